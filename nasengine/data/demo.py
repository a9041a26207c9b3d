"""A small synthetic MSD-layout dataset for demos and tests (written in well under a second).

Each case: an MR-like single-channel volume with an ellipsoidal "organ" (label 1) that contains a
smaller "lesion" (label 2), at random positions and radii. Intensities differ per class
(background < organ < lesion) with Gaussian noise and a smooth multiplicative bias field, so a
tiny network learns it in a few hundred steps but it is not a pure threshold. The spacing is
anisotropic (1.0, 1.0, 1.5) mm and the affine flips x and y (LPS-like storage, as DICOM
converters often write), so reorientation and resampling are exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

DEMO_SPACING = (1.0, 1.0, 1.5)
DEMO_LABELS = {"0": "background", "1": "organ", "2": "lesion"}


def demo_affine(shape, spacing=DEMO_SPACING) -> np.ndarray:
    """LPS-like affine: x and y axes point left/posterior, centred near the world origin."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [spacing[0] * shape[0] / 2, spacing[1] * shape[1] / 2, -spacing[2] * shape[2] / 2]
    return affine


def _make_case(rng: np.random.Generator, shape, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Returns (image float32 [X,Y,Z], label uint8 [X,Y,Z])."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float32) * s for n, s in zip(shape, spacing)], indexing="ij")
    extent = np.array(shape) * np.array(spacing)
    organ_radii = rng.uniform(0.22, 0.32, 3) * extent.min()
    organ_centre = rng.uniform(organ_radii + 2.0, extent - organ_radii - 2.0)
    organ = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, organ_centre, organ_radii)) <= 1.0
    lesion_radius = rng.uniform(0.3, 0.45) * organ_radii.min()
    # lesion centre inside the organ, far enough from its border to stay inside
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    offset = direction * rng.uniform(0.0, 0.4) * (organ_radii - lesion_radius).clip(min=0)
    lesion_centre = organ_centre + offset
    lesion = sum((g - c) ** 2 for g, c in zip(grids, lesion_centre)) <= lesion_radius**2
    label = np.zeros(shape, dtype=np.uint8)
    label[organ] = 1
    label[lesion & organ] = 2
    means = np.array([200.0, 600.0, 1000.0], dtype=np.float32) * rng.uniform(0.9, 1.1)
    image = means[label]
    gradient = rng.normal(size=3)
    gradient /= np.linalg.norm(gradient)
    bias = 1.0 + 0.15 * sum(gd * (g / e - 0.5) for gd, g, e in zip(gradient, grids, extent))
    image = image * bias + rng.normal(0.0, 60.0, shape).astype(np.float32)
    return image.astype(np.float32), label


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, str(path))


def make_demo_data(
    out_dir: str | Path,
    n_cases: int = 6,
    shape: tuple[int, int, int] = (48, 48, 32),
    seed: int = 0,
    *,
    n_test: int = 2,
) -> Path:
    """Write the demo dataset.

    Args:
        out_dir: folder to create (or fill); gets ``dataset.json``, ``imagesTr/``, ``labelsTr/``,
            ``imagesTs/``.
        n_cases: number of labelled training cases.
        shape: volume shape ``(X, Y, Z)`` as stored.
        seed: random seed (same seed, same files).
        n_test: unlabelled test images in ``imagesTs/``.

    Returns:
        ``out_dir`` as a Path (pass it to ``load_dataset``).
    """
    if n_cases < 1:
        raise ValueError("n_cases must be >= 1")
    root = Path(out_dir)
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = demo_affine(shape)
    training = []
    for index in range(n_cases):
        image, label = _make_case(rng, shape, DEMO_SPACING)
        name = f"demo_{index:03d}.nii.gz"
        _save(image, affine, root / "imagesTr" / name)
        _save(label, affine, root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    test = []
    for index in range(n_test):
        image, _ = _make_case(rng, shape, DEMO_SPACING)
        name = f"demo_test_{index:03d}.nii.gz"
        _save(image, affine, root / "imagesTs" / name)
        test.append(f"./imagesTs/{name}")
    description = {
        "name": "VoxelSearchDemo",
        "description": "Synthetic MR-like volumes: an organ (1) containing a lesion (2).",
        "reference": "nasengine.data.demo (synthetic)",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "MR"},
        "channel_names": {"0": "MR"},
        "labels": DEMO_LABELS,
        "numTraining": n_cases,
        "numTest": n_test,
        "training": training,
        "test": test,
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return root
