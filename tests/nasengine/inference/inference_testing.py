"""Small real bundles and inputs for the inference and evaluation tests (a tiny genotype
network, a plan from the demo data, volumes with anisotropic, non-canonical affines)."""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from engine_fakes import tiny_genotype  # noqa: E402

from nasengine.genotype import build_network  # noqa: E402
from nasengine.inference.bundle import write_bundle  # noqa: E402

LABELS = {0: "background", 1: "organ", 2: "lesion"}


def demo_plan(root: Path):
    """(plan, demo data folder) with a 16^3 patch."""
    from nasengine.data import compute_fingerprint, load_dataset, make_demo_data, make_plan

    data = make_demo_data(root, n_cases=3, shape=(24, 20, 16), n_test=1)
    plan = make_plan(compute_fingerprint(load_dataset(data)), divisor=2, patch_size=(16, 16, 16))
    return plan, data


def tiny_bundle(path: Path, plan, *, seed: int = 0, labels=None, source=None) -> Path:
    torch.manual_seed(seed)
    network = build_network(tiny_genotype())
    return write_bundle(path, network=network, genotype=tiny_genotype(), plan=plan,
                        labels=labels or LABELS, channel_names=["MR"], dice={}, mean_dice=None,
                        source=source or {})


def odd_affine() -> np.ndarray:
    """Anisotropic (0.8, 2.5, 1.2 mm), axes permuted and flipped, rotated, shifted: not RAS."""
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0],
                    [-np.sin(angle), 0, np.cos(angle)]])
    perm = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = rot @ perm @ np.diag([0.8, 2.5, 1.2])
    affine[:3, 3] = [30.0, -12.0, 55.0]
    return affine


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def odd_input(demo: Path, path: Path, shape=(21, 9, 15)) -> Path:
    """A demo test image cropped to ``shape`` with ``odd_affine()``."""
    source = sorted((demo / "imagesTs").glob("*.nii*"))[0]
    data = np.asarray(nib.load(str(source)).dataobj, dtype=np.float32)
    data = np.ascontiguousarray(data[: shape[0], : shape[1], : shape[2]])
    return write_nifti(path, data, odd_affine())
