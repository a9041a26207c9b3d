"""Preprocessing a case for the network, and undoing it for predictions.

Steps (each recorded in :class:`PreprocessMeta` so it can be inverted exactly):

1. reorient to RAS with nibabel's orientation algebra (axis flips/permutations only: lossless);
2. resample to the plan's target spacing with ``torch.nn.functional.interpolate`` (image
   trilinear, label nearest-exact, both ``align_corners=False`` so grids share their extent);
3. map label values to class indices ``0..K-1`` (``plan.label_ids`` order);
4. normalise intensities per channel (CT: clip + dataset z-score, otherwise per-image z-score).

Why not MONAI's ``Orientation``/``Spacing``/``Invertd``: they work, but carry MetaTensor
bookkeeping and re-derive the output affine, whereas a prediction must come back on *exactly* the
input's voxel grid (same shape, same affine, byte for byte). With the two explicit, lossless-grid
steps above the inverse is simply: resample back to the RAS shape, undo the flips/permutation,
map class indices back to label values; the caller writes it with the input's own affine.
No cropping to the non-zero region is done (nnU-Net does), which keeps the inverse trivial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .checks import CheckedCase, load_checked_case
from .dataset import Case
from .errors import DataError
from .geometry import (
    inverse_orientation,
    orientation_to_ras,
    ras_spatial,
    reorient,
    reoriented_affine,
    resample,
)
from .io import DEFAULT_MAX_VOXELS, NiftiVolume
from .plan import Plan


@dataclass
class PreprocessMeta:
    """What is needed to put a prediction back on the input's grid.

    Attributes:
        original_shape: the input's spatial shape ``(X, Y, Z)`` as stored.
        original_affine: the input's 4x4 affine (nested lists).
        orientation: ``[3, 2]`` nibabel orientation that was applied (nested lists).
        ras_shape: shape after reorientation.
        ras_spacing: spacing after reorientation (mm).
        ras_affine: affine after reorientation (before resampling).
        resampled_shape: shape after resampling (the network's grid).
        label_ids: class index -> label value.
    """

    original_shape: tuple[int, int, int]
    original_affine: list[list[float]]
    orientation: list[list[float]]
    ras_shape: tuple[int, int, int]
    ras_spacing: tuple[float, float, float]
    ras_affine: list[list[float]]
    resampled_shape: tuple[int, int, int]
    label_ids: list[int]

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("original_shape", "ras_shape", "ras_spacing", "resampled_shape"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessMeta:
        data = dict(data)
        for key in ("original_shape", "ras_shape", "resampled_shape"):
            data[key] = tuple(int(v) for v in data[key])
        data["ras_spacing"] = tuple(float(v) for v in data["ras_spacing"])
        return cls(**data)

    @property
    def resampled_affine(self) -> np.ndarray:
        """Affine of the network grid (voxel centres span the same extent as the RAS grid)."""
        affine = np.asarray(self.ras_affine, dtype=np.float64)
        scale = np.array(self.ras_shape, dtype=np.float64) / np.array(self.resampled_shape, dtype=np.float64)
        out = affine.copy()
        out[:3, :3] = affine[:3, :3] * scale[None, :]
        # voxel i of the new grid sits at old index (i + 0.5) * scale - 0.5
        out[:3, 3] = affine[:3, :3] @ (0.5 * scale - 0.5) + affine[:3, 3]
        return out


@dataclass
class PreprocessedCase:
    """A case on the network's grid.

    Attributes:
        case_id: the case name.
        image: ``[C, X, Y, Z]`` float32, normalised.
        label: ``[X, Y, Z]`` uint8 class indices (0 = background), or ``None``.
        meta: how to go back to the input grid.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    meta: PreprocessMeta


def _resampled_shape(ras_shape, ras_spacing, target_spacing) -> tuple[int, int, int]:
    shape = np.round(np.array(ras_shape) * np.array(ras_spacing) / np.array(target_spacing))
    return tuple(int(max(1, v)) for v in shape)  # type: ignore[return-value]


def normalise(image: np.ndarray, normalisation: list[dict]) -> np.ndarray:
    """Normalise ``[C, X, Y, Z]`` float32 in place per channel (see ``Plan.normalisation``)."""
    for channel, scheme in enumerate(normalisation):
        data = image[channel]
        if scheme["scheme"] == "ct":
            np.clip(data, scheme["clip_low"], scheme["clip_high"], out=data)
            data -= scheme["mean"]
            data /= max(scheme["std"], 1e-8)
        elif scheme["scheme"] == "zscore":
            mean, std = float(data.mean()), float(data.std())
            data -= mean
            data /= max(std, 1e-8)
        else:
            raise ValueError(f"unknown normalisation scheme {scheme['scheme']!r}")
    return image


def _geometry(volume: NiftiVolume, plan: Plan) -> PreprocessMeta:
    info = volume.info
    ornt = orientation_to_ras(info.affine)
    ras_shape, ras_spacing = ras_spatial(info.spatial_shape, info.spacing, info.affine)
    return PreprocessMeta(
        original_shape=tuple(info.spatial_shape),  # type: ignore[arg-type]
        original_affine=info.affine.tolist(),
        orientation=ornt.tolist(),
        ras_shape=tuple(ras_shape),  # type: ignore[arg-type]
        ras_spacing=tuple(float(s) for s in ras_spacing),  # type: ignore[arg-type]
        ras_affine=reoriented_affine(info.affine, ornt, info.spatial_shape).tolist(),
        resampled_shape=_resampled_shape(ras_shape, ras_spacing, plan.target_spacing),
        label_ids=list(plan.label_ids),
    )


def _image_to_grid(volume: NiftiVolume, meta: PreprocessMeta, plan: Plan) -> np.ndarray:
    image = reorient(volume.data, np.asarray(meta.orientation))
    image = resample(image, meta.resampled_shape, mode="trilinear")
    image = np.ascontiguousarray(image, dtype=np.float32)
    return normalise(image, plan.normalisation)


#: Voxels mapped to class indices per slab: the lookup indexes with an intp copy of its
#: indices, so whole-volume indexing would hold 8 bytes per voxel; per slab it is bounded.
LOOKUP_SLAB_VOXELS = 1 << 18


def label_classes(label_xyz: np.ndarray, label_ids) -> np.ndarray:
    """Label values -> class indices (uint8, the position of each value in ``label_ids``),
    slab by slab along the first axis so that the peak is the output plus one slab."""
    label_ids = np.asarray(list(label_ids), dtype=np.int64)
    lookup = np.zeros(int(max(int(label_xyz.max(initial=0)), int(label_ids.max()))) + 1, dtype=np.uint8)
    lookup[label_ids] = np.arange(len(label_ids), dtype=np.uint8)
    classes = np.empty(label_xyz.shape, dtype=np.uint8)
    per_row = max(1, int(np.prod(label_xyz.shape[1:], dtype=np.int64)))
    step = max(1, LOOKUP_SLAB_VOXELS // per_row)
    for start in range(0, label_xyz.shape[0], step):
        np.take(lookup, label_xyz[start:start + step], out=classes[start:start + step])
    return classes


def _label_to_grid(label_xyz: np.ndarray, meta: PreprocessMeta, plan: Plan) -> np.ndarray:
    classes = label_classes(label_xyz, plan.label_ids)
    classes = reorient(classes[None], np.asarray(meta.orientation))
    return np.ascontiguousarray(resample(classes, meta.resampled_shape, mode="nearest")[0], dtype=np.uint8)


def preprocess_checked(case_id: str, checked: CheckedCase, plan: Plan) -> PreprocessedCase:
    """Preprocess data already read and checked by ``checks.load_checked_case``."""
    if checked.image.info.n_channels != plan.in_channels:
        raise DataError(
            checked.image.info.path,
            f"the image has {checked.image.info.n_channels} channel(s) but the model expects "
            f"{plan.in_channels} ({', '.join(plan.channel_names)})",
        )
    meta = _geometry(checked.image, plan)
    image = _image_to_grid(checked.image, meta, plan)
    label = _label_to_grid(checked.label, meta, plan) if checked.label is not None else None
    return PreprocessedCase(case_id=case_id, image=image, label=label, meta=meta)


def preprocess_case(case: Case, plan: Plan, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> PreprocessedCase:
    """Read, check and preprocess one case.

    Args:
        case: image (+ label) files.
        plan: the plan.
        max_voxels: size cap (see ``io.inspect_nifti``).

    Returns:
        PreprocessedCase: ``image`` float32 ``[C, X, Y, Z]``, ``label`` uint8 ``[X, Y, Z]`` class
        indices (or None), ``meta``.

    Raises:
        DataError: any check failure (see ``checks.check_case``), wrong channel count.
    """
    checked = load_checked_case(case, plan.label_ids, n_channels=plan.in_channels, max_voxels=max_voxels)
    return preprocess_checked(case.case_id, checked, plan)


def preprocess_cases(cases, plan: Plan, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> list[PreprocessedCase]:
    """``preprocess_case`` over a list of cases (in order)."""
    return [preprocess_case(case, plan, max_voxels=max_voxels) for case in cases]


def preprocess_image(
    path: str | Path, plan: Plan, *, max_voxels: int = DEFAULT_MAX_VOXELS
) -> tuple[np.ndarray, PreprocessMeta]:
    """Preprocess an unlabelled image (e.g. for prediction).

    Returns:
        (image float32 ``[C, X, Y, Z]`` on the network grid, meta for :func:`restore_label`).

    Raises:
        DataError: unreadable file, NaN/Inf, size cap, wrong channel count.
    """
    case = Case(case_id=Path(path).name, image=Path(path), label=None)
    processed = preprocess_case(case, plan, max_voxels=max_voxels)
    return processed.image, processed.meta


def _as_meta(meta: PreprocessMeta | dict) -> PreprocessMeta:
    return meta if isinstance(meta, PreprocessMeta) else PreprocessMeta.from_dict(meta)


def _check_grid(array_shape, meta: PreprocessMeta) -> None:
    if tuple(array_shape) != tuple(meta.resampled_shape):
        raise ValueError(
            f"the array has spatial shape {tuple(array_shape)} but the preprocessed grid was "
            f"{tuple(meta.resampled_shape)}"
        )


def restore_channels(array_cxyz: np.ndarray, meta: PreprocessMeta | dict) -> np.ndarray:
    """Bring per-class maps (probabilities/logits) back to the input's grid, trilinear.

    Resampling probabilities and taking the argmax afterwards gives smoother boundaries than
    resampling a label map.

    Args:
        array_cxyz: ``[C, X, Y, Z]`` on the network grid (``meta.resampled_shape``).
        meta: from preprocessing.

    Returns:
        ``[C, *meta.original_shape]`` float32, in the input's axis order.
    """
    meta = _as_meta(meta)
    array_cxyz = np.asarray(array_cxyz)
    _check_grid(array_cxyz.shape[1:], meta)
    out = resample(np.asarray(array_cxyz, dtype=np.float32), meta.ras_shape, mode="trilinear")
    return reorient(out, inverse_orientation(np.asarray(meta.orientation)))


def class_indices_to_labels(classes: np.ndarray, meta: PreprocessMeta | dict) -> np.ndarray:
    """Map class indices ``0..K-1`` to the dataset's label values (uint8, or uint16 if needed)."""
    meta = _as_meta(meta)
    ids = np.asarray(meta.label_ids)
    dtype = np.uint8 if ids.max() < 256 else np.uint16
    return ids.astype(dtype)[np.asarray(classes, dtype=np.int64)]


def restore_label(label_xyz: np.ndarray, meta: PreprocessMeta | dict) -> np.ndarray:
    """Put a class-index label map from the network grid back on the input's grid.

    Args:
        label_xyz: ``[X, Y, Z]`` class indices on ``meta.resampled_shape``.
        meta: from preprocessing.

    Returns:
        ``[*meta.original_shape]`` label values (uint8, or uint16 for values >= 256) in the
        input's axis order; save it with ``meta.original_affine`` (``io.write_nifti``) to get a
        NIfTI with exactly the input's shape and affine.
    """
    meta = _as_meta(meta)
    label_xyz = np.asarray(label_xyz)
    _check_grid(label_xyz.shape, meta)
    if label_xyz.size and (label_xyz.min() < 0 or label_xyz.max() >= len(meta.label_ids)):
        raise ValueError(
            f"class indices must lie in 0..{len(meta.label_ids) - 1}, got {label_xyz.min()}..{label_xyz.max()}"
        )
    classes = label_xyz.astype(np.uint8 if len(meta.label_ids) <= 256 else np.int32)
    classes = resample(classes[None], meta.ras_shape, mode="nearest")
    classes = reorient(classes, inverse_orientation(np.asarray(meta.orientation)))[0]
    return class_indices_to_labels(classes, meta)
