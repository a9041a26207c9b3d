"""Reorientation to RAS and resampling between voxel grids (the invertible geometry steps).

Orientation uses nibabel's orientation algebra (``io_orientation`` / ``apply_orientation``, what
``nibabel.as_closest_canonical`` does): it only flips and permutes axes, so it loses nothing and
its inverse is exact. Resampling uses ``torch.nn.functional.interpolate`` with
``align_corners=False``: voxel *centres* of both grids span the same physical extent, so
resampling to a new shape and back to the original shape maps onto the original voxel centres.
Images use trilinear interpolation, labels ``nearest-exact`` (the centre-consistent nearest
neighbour; plain ``"nearest"`` is shifted by half a voxel). torch is fast on CPU and already a
dependency; MONAI's ``Spacing`` would do the same via MetaTensors but hides the grid bookkeeping we
need to invert exactly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from nibabel import orientations as nio

#: Orientation of an array already in RAS axis order (axis i -> world axis i, positive direction).
RAS_ORNT = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])


def orientation_to_ras(affine: np.ndarray) -> np.ndarray:
    """The flips/permutation that bring an array with this affine closest to RAS.

    Args:
        affine: 4x4 voxel-to-world matrix.

    Returns:
        ``[3, 2]`` nibabel orientation array (``apply_orientation`` input).
    """
    return nio.io_orientation(np.asarray(affine, dtype=np.float64))


def ras_spatial(shape_xyz, spacing_xyz, affine: np.ndarray) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Shape and spacing in RAS axis order, from header facts only.

    Args:
        shape_xyz: stored ``(X, Y, Z)``.
        spacing_xyz: stored voxel sizes.
        affine: 4x4 matrix.

    Returns:
        (shape, spacing) permuted into RAS axis order.
    """
    ornt = orientation_to_ras(affine)
    shape = [0, 0, 0]
    spacing = [0.0, 0.0, 0.0]
    for source_axis, (target_axis, _flip) in enumerate(ornt):
        shape[int(target_axis)] = int(shape_xyz[source_axis])
        spacing[int(target_axis)] = float(spacing_xyz[source_axis])
    return tuple(shape), tuple(spacing)


def reorient(array: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Apply an orientation to the last three axes of ``array`` (``[..., X, Y, Z]``)."""
    lead = array.ndim - 3
    moved = np.moveaxis(array, range(lead), range(-lead, 0)) if lead else array  # -> [X,Y,Z,...]
    out = nio.apply_orientation(moved, ornt)
    if lead:
        out = np.moveaxis(out, range(-lead, 0), range(lead))
    return np.ascontiguousarray(out)


def inverse_orientation(ornt: np.ndarray) -> np.ndarray:
    """The orientation that undoes ``reorient(., ornt)``."""
    return nio.ornt_transform(RAS_ORNT, np.asarray(ornt, dtype=np.float64))


def reoriented_affine(affine: np.ndarray, ornt: np.ndarray, shape_xyz) -> np.ndarray:
    """The affine of ``reorient(array, ornt)`` for an array with this affine and shape."""
    return np.asarray(affine, dtype=np.float64) @ nio.inv_ornt_aff(ornt, tuple(shape_xyz))


def resample(array: np.ndarray, shape_xyz, *, mode: str) -> np.ndarray:
    """Resample the last three axes to ``shape_xyz`` over the same physical extent.

    Args:
        array: ``[C, X, Y, Z]`` (float for ``"trilinear"``, integer for ``"nearest"``).
        shape_xyz: target ``(X', Y', Z')``.
        mode: ``"trilinear"`` (images, probabilities) or ``"nearest"`` (label maps).

    Returns:
        ``[C, X', Y', Z']`` array of the input's dtype (a copy; the input when shapes agree).
    """
    shape_xyz = tuple(int(n) for n in shape_xyz)
    if tuple(array.shape[-3:]) == shape_xyz:
        return array
    if mode == "trilinear":
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
        out = F.interpolate(tensor, size=shape_xyz, mode="trilinear", align_corners=False)[0]
        return out.numpy().astype(array.dtype if array.dtype.kind == "f" else np.float32, copy=False)
    if mode == "nearest":
        # uint8 keeps memory low; nearest-exact supports it on CPU.
        work_dtype = np.uint8 if array.min() >= 0 and array.max() < 256 else np.float32
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=work_dtype))[None]
        out = F.interpolate(tensor, size=shape_xyz, mode="nearest-exact")[0]
        return out.numpy().astype(array.dtype, copy=False)
    raise ValueError(f"unknown resampling mode {mode!r}")
