"""Which labelled cases a model is evaluated on, and reading a label in its own geometry.

The held-out (test) cases of a model, in this order of preference:

1. what the bundle records: ``test_cases`` (top level of ``bundle.json`` or in its
   ``source``): ``[{"id", "image", "label"}, ...]`` with paths relative to the dataset folder;
2. the dataset's ``dataset.json`` ``test`` entries that name a ``label``;
3. ``imagesTs/`` files with a label of the same name in ``labelsTs/``.

Validation cases are the bundle's ``source.val_cases`` ids, looked up in the dataset's
training list.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from nasengine.data.dataset import NIFTI_SUFFIXES, case_id_from_path, load_dataset
from nasengine.data.errors import DataError
from nasengine.inference.bundle import ModelBundle

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class EvalCase:
    """A labelled case to score a prediction on: the image as a user would give it, and its
    original label."""

    case_id: str
    image: Path
    label: Path

    def to_dict(self, root: Path | None = None) -> dict[str, str]:
        def rel(p: Path) -> str:
            if root is not None:
                try:
                    return str(p.resolve().relative_to(root.resolve()))
                except ValueError:
                    pass
            return str(p)

        return {"id": self.case_id, "image": rel(self.image), "label": rel(self.label)}


def _inside(root: Path, relative: str, what: str) -> Path:
    path = (root / str(relative).removeprefix("./")).resolve()
    if root.resolve() not in path.parents:
        raise DataError(root / "dataset.json", f"the {what} {relative!r} lies outside the dataset folder")
    if not path.is_file():
        raise DataError(path, f"the {what} listed for evaluation does not exist")
    return path


def cases_from_entries(root: PathLike, entries: Iterable[Any]) -> list[EvalCase]:
    """EvalCases from ``{"id"?, "image", "label"}`` entries relative to ``root``."""
    root = Path(root)
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("image") or not entry.get("label"):
            raise DataError(root, f"an evaluation case needs an 'image' and a 'label', got {entry!r}")
        image = _inside(root, entry["image"], "image")
        label = _inside(root, entry["label"], "label")
        out.append(EvalCase(str(entry.get("id") or case_id_from_path(image)), image, label))
    return out


def _recorded_test_cases(bundle: ModelBundle) -> list[dict] | None:
    for holder in (bundle.info, bundle.info.get("source") or {}):
        cases = holder.get("test_cases")
        if isinstance(cases, list):
            labelled = [c for c in cases if isinstance(c, Mapping) and c.get("label")]
            if labelled:  # a test image without a label cannot be scored
                return labelled
    return None


def _dataset_json_test(root: Path) -> list[dict]:
    try:
        doc = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in doc.get("test") or [] if isinstance(e, Mapping) and e.get("label")]


def _folder_pairs(root: Path) -> list[dict]:
    images, labels = root / "imagesTs", root / "labelsTs"
    if not (images.is_dir() and labels.is_dir()):
        return []
    out = []
    for image in sorted(images.iterdir()):
        if not image.name.endswith(NIFTI_SUFFIXES):
            continue
        case_id = case_id_from_path(image)
        # MSD names images "<case>_0000.nii.gz" in nnU-Net layout; labels drop the channel suffix
        stems = {case_id, case_id.rsplit("_", 1)[0]}
        for stem in stems:
            for suffix in NIFTI_SUFFIXES:
                if (labels / f"{stem}{suffix}").is_file():
                    out.append({"id": stem, "image": f"imagesTs/{image.name}",
                                "label": f"labelsTs/{stem}{suffix}"})
                    break
            else:
                continue
            break
    return out


def held_out_cases(bundle: ModelBundle, data_dir: PathLike) -> list[EvalCase]:
    """The model's held-out labelled cases (see the module notes); DataError when there are
    none."""
    root = Path(data_dir)
    entries = _recorded_test_cases(bundle) or _dataset_json_test(root) or _folder_pairs(root)
    if not entries:
        raise DataError(root, "has no labelled test cases: the model records no test split, "
                              "dataset.json lists no labelled 'test' entries and there is no "
                              "imagesTs/ with labelsTs/")
    return cases_from_entries(root, entries)


def validation_cases(bundle: ModelBundle, data_dir: PathLike) -> list[EvalCase]:
    """The cases the model was validated on during training (``source.val_cases``)."""
    ids = list((bundle.info.get("source") or {}).get("val_cases") or [])
    if not ids:
        return []
    spec = load_dataset(Path(data_dir))
    out = []
    for case_id in ids:
        try:
            case = spec.case(case_id)
        except KeyError:
            raise DataError(Path(data_dir) / "dataset.json",
                            f"validation case {case_id!r} of the model is not in the dataset") from None
        out.append(EvalCase(case.case_id, case.image, case.label))
    return out


def data_dir_of(bundle: ModelBundle, data_dir: PathLike | None) -> Path:
    """``data_dir``, else the dataset folder the model was trained on (``source.data_dir``)."""
    if data_dir is not None:
        return Path(data_dir)
    recorded = (bundle.info.get("source") or {}).get("data_dir")
    if not recorded:
        raise DataError(bundle.path / "bundle.json", "records no dataset folder; give the data folder")
    return Path(recorded)


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along each array axis: the lengths of the affine's columns (right for
    any rotation, unlike reading the diagonal)."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    return tuple(float(v) for v in np.sqrt((a ** 2).sum(axis=0)))  # type: ignore[return-value]


def read_label(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(label values int32 [X,Y,Z], affine) of a label NIfTI as stored."""
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds; one clear message
        raise DataError(path, f"the label cannot be read ({type(exc).__name__})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(path, f"a label map must be 3D, this one has shape {tuple(data.shape)}")
    return np.rint(np.asarray(data, dtype=np.float64)).astype(np.int32), np.asarray(image.affine)
