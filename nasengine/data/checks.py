"""Checks that a case's files are usable, with messages a researcher can act on.

Order matters: the cheap header checks (size cap, dimensionality, geometry agreement of image and
label) run first, before any voxel data is read; the data checks (truncation, NaN/Inf, undeclared
label values) run while reading. ``load_checked_case`` returns the arrays it read so that callers
that need them anyway (fingerprint, preprocessing) read every file once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .dataset import Case, DatasetSpec
from .errors import DataError
from .io import DEFAULT_MAX_VOXELS, NiftiInfo, NiftiVolume, inspect_nifti, read_nifti

#: Largest allowed difference between image and label affines (mm / direction-cosine units).
#: Float32 header storage alone causes ~1e-5; a real misregistration is far above 1e-3.
DEFAULT_AFFINE_TOLERANCE: float = 1e-3


@dataclass
class CheckedCase:
    """A case whose files passed every check.

    Attributes:
        image: ``[C, X, Y, Z]`` float32 volume with its header info.
        label: ``[X, Y, Z]`` label values (integer array), or ``None`` for an unlabelled case.
        label_info: the label's header info, or ``None``.
        label_values: the distinct label values present (sorted), empty without a label.
        label_counts: label value -> number of voxels (values present only).
    """

    image: NiftiVolume
    label: np.ndarray | None
    label_info: NiftiInfo | None
    label_values: list[int]
    label_counts: dict[int, int]


def _declared(labels: Mapping[int, str] | Iterable[int]) -> list[int]:
    return sorted(int(v) for v in (labels.keys() if isinstance(labels, Mapping) else labels))


def _format_values(values: Iterable[float | int]) -> str:
    return "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + "}"


def check_headers(
    case: Case,
    *,
    n_channels: int | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    affine_tolerance: float = DEFAULT_AFFINE_TOLERANCE,
) -> tuple[NiftiInfo, NiftiInfo | None]:
    """Header-only checks of one case (nothing but headers is read).

    Args:
        case: the case.
        n_channels: expected image channels (``len(spec.channel_names)``); ``None`` skips the check.
        max_voxels: size cap per volume.
        affine_tolerance: largest accepted absolute difference between image and label affines.

    Returns:
        (image info, label info or None).

    Raises:
        DataError: the first problem found.
    """
    image_info = inspect_nifti(case.image, max_voxels=max_voxels)
    if n_channels is not None and image_info.n_channels != n_channels:
        raise DataError(
            case.image,
            f"the image has {image_info.n_channels} channel(s) but the dataset declares {n_channels}",
        )
    if case.label is None:
        return image_info, None
    label_info = inspect_nifti(case.label, max_voxels=max_voxels)
    if label_info.n_channels != 1:
        raise DataError(case.label, f"a label map must be a 3D volume, but it has shape {label_info.shape}")
    if label_info.spatial_shape != image_info.spatial_shape:
        raise DataError(
            case.label,
            f"the label map's shape {label_info.spatial_shape} does not match the image "
            f"{case.image.name} shape {image_info.spatial_shape}",
        )
    difference = float(np.max(np.abs(label_info.affine - image_info.affine)))
    if difference > affine_tolerance:
        raise DataError(
            case.label,
            f"the label map's position/orientation (affine) differs from the image {case.image.name} "
            f"by up to {difference:.4g} (tolerance {affine_tolerance:g}); image and label must lie "
            "on the same voxel grid. Label affine:\n"
            f"{np.array2string(label_info.affine, precision=3)}\nimage affine:\n"
            f"{np.array2string(image_info.affine, precision=3)}",
        )
    return image_info, label_info


def load_checked_case(
    case: Case,
    labels: Mapping[int, str] | Iterable[int],
    *,
    n_channels: int | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    affine_tolerance: float = DEFAULT_AFFINE_TOLERANCE,
) -> CheckedCase:
    """Run every check on one case and return its data.

    Args:
        case: the case.
        labels: declared label values (``spec.labels`` or an iterable of ints).
        n_channels, max_voxels, affine_tolerance: see :func:`check_headers`.

    Returns:
        CheckedCase with the float32 image ``[C, X, Y, Z]`` and the label ``[X, Y, Z]``.

    Raises:
        DataError: the first problem found, naming the file.
    """
    check_headers(case, n_channels=n_channels, max_voxels=max_voxels, affine_tolerance=affine_tolerance)
    image = read_nifti(case.image, dtype=np.float32, max_voxels=max_voxels)
    finite = np.isfinite(image.data)
    if not finite.all():
        n_nan = int(np.isnan(image.data).sum())
        n_inf = int((~finite).sum()) - n_nan
        what = " and ".join(
            part for part in (f"{n_nan:,} NaN" if n_nan else "", f"{n_inf:,} infinite" if n_inf else "") if part
        )
        raise DataError(case.image, f"the image contains {what} voxel value(s); every voxel must be a finite number")
    if case.label is None:
        return CheckedCase(image=image, label=None, label_info=None, label_values=[], label_counts={})
    label_volume = read_nifti(case.label, max_voxels=max_voxels)
    label = label_volume.data[0]
    if label.dtype.kind == "f":
        if not np.isfinite(label).all():
            raise DataError(case.label, "the label map contains NaN or infinite values; labels must be whole numbers")
        rounded = np.rint(label)
        if not np.array_equal(rounded, label):
            bad = np.unique(label[rounded != label])[:5]
            raise DataError(
                case.label,
                f"the label map contains non-integer values such as {_format_values(bad.tolist())}; "
                "labels must be whole numbers",
            )
        label = rounded.astype(np.int64)
    elif label.dtype.kind not in "iub":
        raise DataError(case.label, f"label data type {label.dtype} is not an integer type")
    if label.size and label.min() >= 0 and label.max() <= 65535:
        counts = np.bincount(label.ravel())  # much faster than np.unique on big volumes
        label_counts = {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    else:
        values, counts = np.unique(label, return_counts=True)
        label_counts = {int(v): int(c) for v, c in zip(values, counts)}
    present = sorted(label_counts)
    declared = _declared(labels)
    undeclared = sorted(set(present) - set(declared))
    if undeclared:
        raise DataError(
            case.label,
            f"label values {_format_values(undeclared)} are not declared in dataset.json "
            f"(declared: {', '.join(map(str, declared))})",
        )
    return CheckedCase(
        image=image, label=label, label_info=label_volume.info, label_values=present, label_counts=label_counts
    )


def check_case(
    case: Case,
    labels: Mapping[int, str] | Iterable[int],
    *,
    n_channels: int | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    affine_tolerance: float = DEFAULT_AFFINE_TOLERANCE,
) -> None:
    """Check one case (headers, then data); returns ``None`` or raises :class:`DataError`.

    Checks: files readable and NIfTI, not truncated, size under ``max_voxels``, image channels
    as declared, label 3D with the image's shape and affine (within ``affine_tolerance``), no
    NaN/Inf in the image or label, label values whole numbers and declared.
    """
    load_checked_case(
        case, labels, n_channels=n_channels, max_voxels=max_voxels, affine_tolerance=affine_tolerance
    )


def check_image(
    path, *, n_channels: int | None = None, max_voxels: int = DEFAULT_MAX_VOXELS
) -> NiftiInfo:
    """Check a single image (e.g. an upload for prediction): header, size, channels, data.

    Returns:
        Its header info. Raises DataError on any problem.
    """
    case = Case(case_id="", image=path, label=None)
    checked = load_checked_case(case, [0], n_channels=n_channels, max_voxels=max_voxels)
    return checked.image.info


def check_dataset(spec: DatasetSpec, *, max_voxels: int = DEFAULT_MAX_VOXELS, affine_tolerance: float = DEFAULT_AFFINE_TOLERANCE) -> list[DataError]:
    """Check every case and collect all problems (one per failing case) instead of stopping.

    Returns:
        The DataErrors found, in case order; empty when the dataset is usable.
    """
    problems: list[DataError] = []
    for case in spec.cases:
        try:
            check_case(
                case,
                spec.labels,
                n_channels=spec.n_channels,
                max_voxels=max_voxels,
                affine_tolerance=affine_tolerance,
            )
        except DataError as error:
            problems.append(error)
    return problems
