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


# ----------------------------------------------------------------------------- anatomy-like

#: Spacing of the anatomy-like phantom: thick slices, as in most clinical MR/CT (x, y, z) mm.
ANATOMY_SPACING = (0.9, 0.9, 2.5)
#: Classes of the phantom. "cortex" is a shell around "medulla" (nested); "vessel" is a tube
#: that touches the cortex along its length; "cyst" is a small structure inside the medulla.
ANATOMY_LABELS = {"0": "background", "1": "cortex", "2": "medulla", "3": "vessel", "4": "cyst"}


def _smooth_noise(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    """Unit-variance smooth random field (Gaussian-filtered white noise)."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma_vox, mode="wrap")
    return field / max(float(field.std()), 1e-6)


def _anatomy_case(rng: np.random.Generator, shape, spacing) -> tuple[np.ndarray, np.ndarray]:
    """One phantom case: (image float32 [X,Y,Z], label uint8 [X,Y,Z]).

    A body (background tissue with fat-like rim) holds an irregular organ whose outer shell
    (cortex, 1) encloses a core (medulla, 2) with a small cyst (4) inside; a tubular vessel (3)
    runs along z and touches the cortex. Cortex and vessel have close intensities, so the
    touching boundary needs shape context, not a threshold. Intensities get a smooth
    multiplicative bias field, textured noise and a partial-volume blur along the thick z axis.
    """
    from scipy.ndimage import gaussian_filter

    spacing = np.asarray(spacing, dtype=np.float32)
    grids = np.meshgrid(*[(np.arange(n, dtype=np.float32) + 0.5) * s
                          for n, s in zip(shape, spacing)], indexing="ij")
    extent = np.array(shape, dtype=np.float32) * spacing
    centre = extent / 2 + rng.uniform(-0.05, 0.05, 3) * extent
    # organ: an ellipsoid with a smooth random radial perturbation (irregular, lobulated)
    radii = rng.uniform(0.24, 0.32, 3) * extent
    radii[2] = rng.uniform(0.30, 0.38) * extent[2]
    rel = [(g - c) / r for g, c, r in zip(grids, centre, radii)]
    rho = np.sqrt(sum(r ** 2 for r in rel))
    wobble = 0.12 * _smooth_noise(rng, shape, np.array([6.0, 6.0, 2.5]))
    organ = rho <= 1.0 + wobble
    thickness = rng.uniform(0.25, 0.35)
    medulla = rho <= (1.0 - thickness) + 0.6 * wobble
    # cyst: a small sphere inside the medulla
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    cyst_r = rng.uniform(0.35, 0.45) * (1.0 - thickness) * radii.min()
    cyst_c = centre + direction * rng.uniform(0.0, 0.25) * (1.0 - thickness) * radii
    cyst = sum((g - c) ** 2 for g, c in zip(grids, cyst_c)) <= cyst_r ** 2
    # vessel: a tube along z, tangent to the organ's outer surface on a random side
    angle = rng.uniform(0, 2 * np.pi)
    vessel_r = rng.uniform(0.07, 0.1) * extent[:2].min()
    axis = np.array([np.cos(angle), np.sin(angle)])
    touch = centre[:2] + axis * radii[:2] + axis * vessel_r * 0.6
    drift = rng.uniform(-0.08, 0.08, 2) * extent[:2]  # the tube drifts slowly along z
    zf = grids[2] / extent[2] - 0.5
    vx, vy = touch[0] + drift[0] * zf, touch[1] + drift[1] * zf
    vessel = ((grids[0] - vx) ** 2 + (grids[1] - vy) ** 2) <= vessel_r ** 2
    label = np.zeros(shape, dtype=np.uint8)
    label[vessel] = 3
    label[organ] = 1  # the organ wins where they overlap: the two touch, sharing a boundary
    label[medulla & organ] = 2
    label[cyst & medulla & organ] = 4
    # intensities: background tissue, cortex ~ vessel (close), medulla darker, cyst bright
    scale = rng.uniform(0.85, 1.15)
    means = np.array([300.0, 700.0, 480.0, 780.0, 1100.0], dtype=np.float32) * scale
    texture = 1.0 + 0.08 * _smooth_noise(rng, shape, 1.0)
    image = means[label] * texture
    # partial volume: blur along the thick axis more than in-plane
    image = gaussian_filter(image, sigma=(0.6, 0.6, 0.8))
    bias = np.exp(0.25 * _smooth_noise(rng, shape, np.array(shape, dtype=np.float32) / 3.0))
    image = image * bias + rng.normal(0.0, 70.0, shape).astype(np.float32)
    return image.astype(np.float32), label


def make_anatomy_data(
    out_dir: str | Path,
    n_cases: int = 12,
    shape: tuple[int, int, int] = (64, 64, 32),
    seed: int = 0,
    *,
    n_test: int = 4,
    spacing: tuple[float, float, float] = ANATOMY_SPACING,
) -> Path:
    """Write the anatomy-like phantom dataset (MSD layout) with labelled test cases.

    Nested (cortex around medulla around cyst) and touching (vessel against cortex)
    structures, four foreground classes, textured noise, a smooth bias field and anisotropic
    spacing (0.9 x 0.9 x 2.5 mm by default). The ``test`` list of ``dataset.json`` holds
    ``{"image", "label"}`` entries (``imagesTs/``, ``labelsTs/``): the held-out split.

    Args:
        out_dir: folder to create (or fill).
        n_cases: labelled training cases.
        shape: volume shape ``(X, Y, Z)`` as stored.
        seed: random seed (same seed, same files).
        n_test: labelled test cases.
        spacing: voxel spacing in mm.

    Returns:
        ``out_dir`` as a Path.
    """
    if n_cases < 1:
        raise ValueError("n_cases must be >= 1")
    root = Path(out_dir)
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = demo_affine(shape, spacing)
    training, test = [], []
    for index in range(n_cases + n_test):
        image, label = _anatomy_case(rng, shape, spacing)
        held_out = index >= n_cases
        name = f"phantom_{'test_' if held_out else ''}{index:03d}.nii.gz"
        images, labels = ("imagesTs", "labelsTs") if held_out else ("imagesTr", "labelsTr")
        _save(image, affine, root / images / name)
        _save(label, affine, root / labels / name)
        (test if held_out else training).append(
            {"image": f"./{images}/{name}", "label": f"./{labels}/{name}"})
    description = {
        "name": "VoxelSearchPhantom",
        "description": ("Synthetic anatomy-like MR: cortex (1) around medulla (2) with a cyst "
                        "(4), and a vessel (3) touching the cortex; bias field, noise, "
                        "anisotropic spacing. Test cases are labelled."),
        "reference": "nasengine.data.demo.make_anatomy_data (synthetic)",
        "licence": "CC0",
        "tensorImageSize": "3D",
        "modality": {"0": "MR"},
        "channel_names": {"0": "MR"},
        "labels": ANATOMY_LABELS,
        "numTraining": n_cases,
        "numTest": n_test,
        "training": training,
        "test": test,
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return root
