"""Helpers for the data tests: write real NIfTI files into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


def _write(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(np.asarray(array), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


@pytest.fixture
def write_nifti_file():
    """``write_nifti_file(path, array, affine=None) -> path`` (sform and qform set)."""
    return _write


def _ball(shape, centre, radius, value=1, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    inside = sum((g - c * s) ** 2 for g, c, s in zip(grids, centre, spacing)) <= radius**2
    return (inside * value).astype(np.uint8)


@pytest.fixture
def ball():
    """``ball(shape, centre_voxel, radius_mm, value=1, spacing=(1,1,1)) -> uint8 [X,Y,Z]``."""
    return _ball


@pytest.fixture
def make_msd(tmp_path):
    """``make_msd(cases, labels=..., channels=...) -> root``: write an MSD folder.

    ``cases`` is a list of ``(case_id, image_array, label_array, affine)``; 4D image arrays are
    stored channels-last as MSD does.
    """

    def make(cases, labels=None, channels=None, name="root"):
        root = tmp_path / name
        training = []
        for case_id, image, label, affine in cases:
            _write(root / "imagesTr" / f"{case_id}.nii.gz", image, affine)
            _write(root / "labelsTr" / f"{case_id}.nii.gz", label, affine)
            training.append({"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz"})
        description = {
            "name": "TestSet",
            "labels": labels or {"0": "background", "1": "organ", "2": "lesion"},
            "modality": channels or {"0": "MR"},
            "numTraining": len(cases),
            "training": training,
        }
        (root / "dataset.json").write_text(json.dumps(description))
        return root

    return make
