"""Preview PNG of a case: axial, coronal and sagittal slices with the label map overlaid.

Arrays are brought to RAS order first so that every preview looks the same way round
(anterior up in the axial view, superior up in the coronal and sagittal views). Slices go
through the centre of the labelled region (the middle of the volume when the label is empty),
and each panel is scaled to its physical aspect ratio from the voxel spacing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nibabel import orientations as nio
from PIL import Image

from webapp.common.colours import colour_of

PANEL = 200  # pixels: the longer side of each panel
GAP = 4
BACKGROUND = (17, 24, 32)
ALPHA = 0.45


def label_colour(value: int) -> tuple[int, int, int]:
    """Overlay colour of a foreground label value: the palette every page and the viewer use."""
    return colour_of(value)


def _to_ras(array_xyz: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ornt = nio.io_orientation(affine)
    ras = nio.apply_orientation(array_xyz, ornt)
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    ras_spacing = np.zeros(3)
    for src, (dst, _flip) in enumerate(ornt):
        ras_spacing[int(dst)] = spacing[src]
    return ras, ras_spacing


def _window(image: np.ndarray) -> tuple[float, float]:
    sample = image.ravel()
    if sample.size > 200_000:
        sample = sample[:: sample.size // 200_000]
    low, high = np.percentile(sample, [1.0, 99.0])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def _panel(image2d: np.ndarray, label2d: np.ndarray, window, aspect: float) -> Image.Image:
    """image2d/label2d are [rows, cols] already oriented for display; aspect = row/col spacing."""
    low, high = window
    grey = np.clip((image2d - low) / (high - low), 0.0, 1.0)
    rgb = np.repeat((grey * 255.0)[..., None], 3, axis=2)
    for value in np.unique(label2d):
        if value == 0:
            continue
        mask = label2d == value
        colour = np.array(label_colour(int(value)), dtype=np.float64)
        rgb[mask] = (1.0 - ALPHA) * rgb[mask] + ALPHA * colour
    img = Image.fromarray(rgb.astype(np.uint8), mode="RGB")
    rows, cols = image2d.shape
    height_mm, width_mm = rows * aspect, cols * 1.0
    scale = PANEL / max(height_mm, width_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    return img.resize(size, Image.Resampling.NEAREST)


def _centre(label: np.ndarray) -> tuple[int, int, int]:
    fg = np.argwhere(label > 0)
    if fg.size == 0:
        return tuple(int(n // 2) for n in label.shape)  # type: ignore[return-value]
    low, high = fg.min(axis=0), fg.max(axis=0)
    return tuple(int((a + b) // 2) for a, b in zip(low, high))  # type: ignore[return-value]


def render_preview(image_xyz: np.ndarray, label_xyz: np.ndarray | None, affine, out_path: Path) -> Path:
    """Write a PNG of three orthogonal slices of ``image_xyz`` (channel 0) with the label overlaid."""
    affine = np.asarray(affine, dtype=np.float64)
    image, spacing = _to_ras(np.asarray(image_xyz, dtype=np.float32), affine)
    if label_xyz is None:
        label = np.zeros(image.shape, dtype=np.int16)
    else:
        label, _ = _to_ras(np.asarray(label_xyz), affine)
    cx, cy, cz = _centre(label)
    window = _window(image[np.isfinite(image)])
    sx, sy, sz = spacing
    # Rows run top to bottom, so flip after transposing: anterior (axial) or superior (coronal,
    # sagittal) ends up at the top. Left-right follows RAS (neurological view).
    axial = (np.flipud(image[:, :, cz].T), np.flipud(label[:, :, cz].T), sy / sx)
    coronal = (np.flipud(image[:, cy, :].T), np.flipud(label[:, cy, :].T), sz / sx)
    sagittal = (np.flipud(image[cx, :, :].T), np.flipud(label[cx, :, :].T), sz / sy)
    panels = [_panel(img, lab, window, aspect) for img, lab, aspect in (axial, coronal, sagittal)]
    width = sum(p.width for p in panels) + GAP * (len(panels) + 1)
    height = max(p.height for p in panels) + 2 * GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    x = GAP
    for panel in panels:
        sheet.paste(panel, (x, GAP + (height - 2 * GAP - panel.height) // 2))
        x += panel.width + GAP
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path, format="PNG", optimize=True)
    return out_path
