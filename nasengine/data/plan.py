"""The preprocessing/training plan derived from a fingerprint (nnU-Net's "plans", simplified).

* Target spacing: the median spacing, except for strongly anisotropic data, where we follow
  nnU-Net (``get_target_spacing`` of nnU-Net v1/v2): if the coarsest axis is > 3x coarser than
  the others *and* has < 1/3 of their voxels, its target is the 10th percentile of that axis'
  spacings (but not finer than the other axes), so thin-slice cases are not thrown away.
* Patch size: per axis the largest multiple of ``divisor`` that fits the median shape after
  resampling, capped by ``max_patch`` (default 128) and at least ``divisor``.
* Normalisation per channel: CT channels are clipped to the foreground 0.5/99.5 percentiles and
  z-scored with foreground mean/std (Hounsfield units mean the same in every scan); every other
  channel is z-scored per image (MR intensities have no absolute scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .dataset import CT_NAMES

PLAN_VERSION = 1
DEFAULT_MAX_PATCH = 128
#: nnU-Net's anisotropy threshold (spacing ratio and voxel-count ratio).
ANISOTROPY_THRESHOLD = 3.0


@dataclass
class Plan:
    """Everything preprocessing, sampling and inference need to agree on.

    Attributes:
        target_spacing: voxel size (mm) after resampling, RAS axis order.
        patch_size: training patch ``(X, Y, Z)``, each a multiple of ``divisor``.
        divisor: the network's required divisibility.
        median_shape: median image shape after resampling (RAS order).
        normalisation: per channel ``{"scheme": "ct", "clip_low", "clip_high", "mean", "std"}``
            or ``{"scheme": "zscore"}``.
        label_ids: label values in class-index order (class i <-> value ``label_ids[i]``).
        label_names: class names, same order.
        channel_names: image channel names.
        modality: dataset modality word.
        version: plan format version.
    """

    target_spacing: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    divisor: int
    median_shape: tuple[int, int, int]
    normalisation: list[dict]
    label_ids: list[int]
    label_names: list[str]
    channel_names: list[str]
    modality: str
    version: int = PLAN_VERSION
    notes: list[str] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return len(self.channel_names)

    @property
    def out_channels(self) -> int:
        """Classes including background."""
        return len(self.label_ids)

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists)."""
        data = asdict(self)
        for key in ("target_spacing", "patch_size", "median_shape"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        data = dict(data)
        if int(data.get("version", PLAN_VERSION)) != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')} is not supported (expected {PLAN_VERSION})")
        data["target_spacing"] = tuple(float(v) for v in data["target_spacing"])
        data["patch_size"] = tuple(int(v) for v in data["patch_size"])
        data["median_shape"] = tuple(int(v) for v in data["median_shape"])
        data["label_ids"] = [int(v) for v in data["label_ids"]]
        return cls(**data)


def target_spacing_from(spacings: np.ndarray, shapes: np.ndarray) -> tuple[np.ndarray, bool]:
    """nnU-Net's target spacing rule (see module docstring).

    Args:
        spacings: ``[N, 3]`` per-case spacings (RAS order).
        shapes: ``[N, 3]`` per-case shapes.

    Returns:
        (target spacing ``[3]``, whether the anisotropy rule was applied).
    """
    target = np.percentile(spacings, 50, axis=0)
    target_size = np.percentile(shapes, 50, axis=0)
    worst = int(np.argmax(target))
    others = [a for a in range(3) if a != worst]
    anisotropic_spacing = target[worst] > ANISOTROPY_THRESHOLD * max(target[others])
    anisotropic_voxels = target_size[worst] * ANISOTROPY_THRESHOLD < min(target_size[others])
    if anisotropic_spacing and anisotropic_voxels:
        low_res = np.percentile(spacings[:, worst], 10)
        if low_res < max(target[others]):  # never finer than the in-plane axes
            low_res = max(max(target[others]), low_res) + 1e-5
        target[worst] = low_res
        return target, True
    return target, False


def _per_axis(value: int | Sequence[int], name: str) -> np.ndarray:
    array = np.array([value] * 3 if np.isscalar(value) else list(value), dtype=np.int64)
    if array.shape != (3,) or (array < 1).any():
        raise ValueError(f"{name} must be a positive integer or three positive integers, got {value!r}")
    return array


def make_plan(
    fingerprint: dict,
    *,
    divisor: int,
    max_patch: int | Sequence[int] | None = None,
    patch_size: Sequence[int] | None = None,
    target_spacing: Sequence[float] | None = None,
) -> Plan:
    """Derive a Plan from a fingerprint (``compute_fingerprint``).

    Args:
        fingerprint: the dataset fingerprint.
        divisor: every patch side must be a multiple of this (2 ** number of downsamplings).
        max_patch: cap per axis (int or 3 ints) for the automatic patch size; default 128.
        patch_size: explicit patch size (3 multiples of ``divisor``); overrides the automatic one.
        target_spacing: explicit target spacing (mm, RAS order); overrides the rule.

    Returns:
        The Plan.

    Raises:
        ValueError: an explicit patch size that is not a multiple of ``divisor``, bad arguments,
            or a fingerprint without cases.
    """
    if int(divisor) < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    divisor = int(divisor)
    spacings = np.asarray(fingerprint["spacings"], dtype=np.float64)
    shapes = np.asarray(fingerprint["shapes"], dtype=np.float64)
    if spacings.ndim != 2 or spacings.shape[0] == 0:
        raise ValueError("the fingerprint has no cases; cannot make a plan")
    notes: list[str] = []
    if target_spacing is not None:
        target = np.asarray(target_spacing, dtype=np.float64)
        if target.shape != (3,) or (target <= 0).any():
            raise ValueError(f"target_spacing must be three positive numbers, got {target_spacing!r}")
        notes.append("target spacing given explicitly")
    else:
        target, anisotropic = target_spacing_from(spacings, shapes)
        notes.append(
            "target spacing: median spacing, low-resolution axis at its 10th percentile (anisotropic data)"
            if anisotropic
            else "target spacing: median spacing"
        )
    resampled_shapes = np.round(shapes * spacings / target[None, :])
    median_shape = np.median(resampled_shapes, axis=0).astype(np.int64)
    if patch_size is not None:
        patch = _per_axis(patch_size, "patch_size")
        if (patch % divisor).any():
            raise ValueError(
                f"patch size {tuple(int(p) for p in patch)} must be a multiple of {divisor} on every axis "
                "(the network halves the resolution that many times)"
            )
        notes.append("patch size given explicitly")
    else:
        cap = _per_axis(DEFAULT_MAX_PATCH if max_patch is None else max_patch, "max_patch")
        fit = np.minimum(median_shape, cap)
        patch = np.maximum(divisor, (fit // divisor) * divisor)
        notes.append(f"patch size: largest multiple of {divisor} within the median shape and cap {tuple(int(c) for c in cap)}")
    labels = {int(k): v for k, v in fingerprint["labels"].items()}
    normalisation = []
    for stats in fingerprint["intensity"]:
        if str(stats["channel"]).strip().upper() in CT_NAMES:
            normalisation.append(
                {
                    "scheme": "ct",
                    "clip_low": stats["percentile_00_5"],
                    "clip_high": stats["percentile_99_5"],
                    "mean": stats["mean"],
                    "std": max(stats["std"], 1e-8),
                }
            )
        else:
            normalisation.append({"scheme": "zscore"})
    return Plan(
        target_spacing=tuple(float(v) for v in target),  # type: ignore[arg-type]
        patch_size=tuple(int(v) for v in patch),  # type: ignore[arg-type]
        divisor=divisor,
        median_shape=tuple(int(v) for v in median_shape),  # type: ignore[arg-type]
        normalisation=normalisation,
        label_ids=sorted(labels),
        label_names=[labels[k] for k in sorted(labels)],
        channel_names=list(fingerprint["channel_names"]),
        modality=str(fingerprint["modality"]),
        notes=notes,
    )
