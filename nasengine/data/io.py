"""Reading NIfTI files: the header first (cheap, safe), then the voxel data.

``inspect_nifti`` reads only the header (nibabel loads lazily: for ``.nii.gz`` only the first few
hundred decompressed bytes are read), so absurd sizes, broken geometry and files that are not
NIfTI at all are rejected before any voxel data is touched. ``read_nifti`` then reads the data and
turns the errors of truncated or corrupt files (which only show up while decompressing) into
:class:`DataError`.

Axis convention: NIfTI stores spatial axes first and channels last (MSD's 4D images are
``[X, Y, Z, C]``; ITK-style vector images are ``[X, Y, Z, 1, C]``). Everything handed out here is
channels first, ``[C, X, Y, Z]``, which is what PyTorch and MONAI expect.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import DataError

#: Largest volume (spatial voxels x channels) accepted, checked from the header before reading.
#: 512^3 is a whole-body CT at full resolution; anything bigger is almost surely a broken header.
DEFAULT_MAX_VOXELS: int = 512**3

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class NiftiInfo:
    """What the header says about a NIfTI file.

    Attributes:
        path: the file.
        shape: the stored array shape, e.g. ``(X, Y, Z)`` or ``(X, Y, Z, C)``.
        spatial_shape: ``(X, Y, Z)``.
        n_channels: ``C`` (1 for a 3D file).
        spacing: voxel size in mm along the stored axes ``(sx, sy, sz)``.
        affine: 4x4 voxel-to-world (RAS+ mm) matrix, float64.
        dtype: the on-disk data type, e.g. ``"int16"``.
        n_voxels: ``X * Y * Z * C``.
    """

    path: Path
    shape: tuple[int, ...]
    spatial_shape: tuple[int, int, int]
    n_channels: int
    spacing: tuple[float, float, float]
    affine: np.ndarray
    dtype: str
    n_voxels: int

    def to_dict(self) -> dict:
        """JSON-able summary (for the web app's dataset table)."""
        return {
            "file": self.path.name,
            "shape": list(self.shape),
            "spatial_shape": list(self.spatial_shape),
            "n_channels": self.n_channels,
            "spacing": list(self.spacing),
            "affine": self.affine.tolist(),
            "dtype": self.dtype,
            "n_voxels": self.n_voxels,
        }


@dataclass
class NiftiVolume:
    """Voxel data plus its header facts.

    Attributes:
        data: ``[C, X, Y, Z]`` array (channels first; ``C = 1`` for 3D files).
        info: the header summary.
    """

    data: np.ndarray
    info: NiftiInfo


def _load_header(path: Path) -> nib.Nifti1Image:
    if not path.is_file():
        raise DataError(path, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise DataError(path, "the file is empty (0 bytes)")
    with open(path, "rb") as handle:
        head = handle.read(64)
    if path.name.lower().endswith(".gz") and not head.startswith(_GZIP_MAGIC):
        preview = head[:24].decode("ascii", errors="replace").strip()
        looks_text = all(32 <= b < 127 or b in (9, 10, 13) for b in head)
        hint = f" (it starts with the text {preview!r})" if looks_text else ""
        raise DataError(
            path, f"the file is named .gz but is not gzip-compressed{hint}; it is not a NIfTI image"
        )
    try:
        image = nib.load(str(path))
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, f"the file is truncated or corrupt; its header cannot be read ({exc})") from exc
    except Exception as exc:  # nibabel raises several types for "this is not an image"
        raise DataError(path, f"the file cannot be read as a NIfTI image ({exc})") from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(path, f"the file is a {type(image).__name__}, not a NIfTI image (.nii or .nii.gz)")
    return image


def _info_from_image(path: Path, image: nib.Nifti1Image, max_voxels: int) -> NiftiInfo:
    shape = tuple(int(n) for n in image.shape)
    if len(shape) == 5 and shape[3] == 1:  # ITK vector image: [X, Y, Z, 1, C]
        n_channels = shape[4]
    elif len(shape) == 4:  # MSD multi-channel: [X, Y, Z, C]
        n_channels = shape[3]
    elif len(shape) == 3:
        n_channels = 1
    else:
        raise DataError(
            path,
            f"the image has shape {shape}; expected a 3D volume (X, Y, Z) "
            "or a multi-channel 4D volume (X, Y, Z, channels)",
        )
    spatial = (shape[0], shape[1], shape[2])
    if min(shape) < 1:
        raise DataError(path, f"the header says the image has shape {shape}, which has an empty axis")
    n_voxels = int(np.prod(spatial, dtype=np.int64)) * n_channels
    if n_voxels > max_voxels:
        raise DataError(
            path,
            f"the header says the image has {' x '.join(map(str, shape))} = {n_voxels:,} voxels, "
            f"more than the limit of {max_voxels:,}; the header is probably broken "
            "(or the volume must be cropped or downsampled first)",
        )
    dtype = image.header.get_data_dtype()
    if dtype.fields is not None or dtype.kind in "cOSUV":
        raise DataError(path, f"voxel data type {dtype} is not supported (expected integers or floats)")
    if not path.name.lower().endswith(".gz"):
        # Uncompressed: the header alone tells whether the file is long enough.
        expected = int(image.dataobj.offset) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        actual = path.stat().st_size
        if actual < expected:
            raise DataError(
                path,
                f"the file is truncated: its header describes {expected:,} bytes but the file "
                f"holds only {actual:,}",
            )
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DataError(
            path, "the header's voxel-to-world matrix (affine) is invalid (non-finite or singular)"
        )
    # Voxel size from the affine (not pixdim), so it agrees with the geometry that is used.
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    return NiftiInfo(
        path=path,
        shape=shape,
        spatial_shape=spatial,
        n_channels=n_channels,
        spacing=spacing,  # type: ignore[arg-type]
        affine=affine,
        dtype=str(dtype),
        n_voxels=n_voxels,
    )


def inspect_nifti(path: str | Path, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> NiftiInfo:
    """Read and sanity-check a NIfTI header without reading the voxel data.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        max_voxels: largest accepted ``X*Y*Z*C`` (checked before anything is read).

    Returns:
        NiftiInfo with shape, spatial shape, channels, spacing (mm), affine, dtype, voxel count.

    Raises:
        DataError: missing/empty file, not gzip or not NIfTI, unsupported dimensionality or
            dtype, absurd size, invalid affine.
    """
    path = Path(path)
    return _info_from_image(path, _load_header(path), max_voxels)


def read_nifti(
    path: str | Path, *, dtype: np.dtype | type | None = None, max_voxels: int = DEFAULT_MAX_VOXELS
) -> NiftiVolume:
    """Read a NIfTI file's voxel data (after the header checks of :func:`inspect_nifti`).

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        dtype: convert to this dtype (e.g. ``np.float32`` for images); ``None`` keeps the stored
            type (scaled files come back as floats).
        max_voxels: see :func:`inspect_nifti`.

    Returns:
        NiftiVolume whose ``data`` is ``[C, X, Y, Z]`` (channels first).

    Raises:
        DataError: everything :func:`inspect_nifti` raises, plus truncated or corrupt data.
    """
    path = Path(path)
    image = _load_header(path)
    info = _info_from_image(path, image, max_voxels)
    try:
        if dtype is not None and np.dtype(dtype).kind == "f":
            # get_fdata scales in the requested precision: no float64 copy of a big volume.
            data = image.get_fdata(dtype=np.dtype(dtype), caching="unchanged")
        else:
            data = np.asanyarray(image.dataobj)
            if dtype is not None:
                data = data.astype(dtype, copy=False)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, f"the file is truncated or corrupt; reading its voxel data failed ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise DataError(path, f"the voxel data cannot be read; the file is probably truncated ({exc})") from exc
    data = data.reshape(info.spatial_shape + (info.n_channels,))
    data = np.ascontiguousarray(np.moveaxis(data, -1, 0))
    return NiftiVolume(data=data, info=info)


def write_nifti(array_xyz: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write a 3D array as NIfTI with the given affine (sform and qform both set).

    Args:
        array_xyz: ``[X, Y, Z]`` array (e.g. a label map from ``preprocess.restore_label``).
        affine: 4x4 voxel-to-world matrix, usually the input image's.
        path: output path (``.nii`` or ``.nii.gz``).

    Returns:
        The path written. The header's free-text fields are left empty.
    """
    path = Path(path)
    image = nib.Nifti1Image(np.asarray(array_xyz), np.asarray(affine, dtype=np.float64))
    image.set_sform(np.asarray(affine, dtype=np.float64), code=1)
    image.set_qform(np.asarray(affine, dtype=np.float64), code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


#: Header text fields that may hold patient information (free text written by scanners/tools).
IDENTIFYING_HEADER_FIELDS: tuple[str, ...] = ("descrip", "aux_file", "db_name", "intent_name")


def clear_header_text(path: str | Path, out_path: str | Path | None = None) -> Path:
    """Blank the free-text header fields (``descrip``, ``aux_file``, ...) and any extensions.

    Used on import so that no patient information travels inside stored NIfTI headers. Streams
    the file (nothing is held in memory): the header bytes are rewritten, the header extensions
    (which can carry whole DICOM headers) are zeroed, the voxel data is copied byte for byte, so
    data, scaling and geometry are unchanged.

    Args:
        path: the NIfTI file.
        out_path: where to write the cleaned file; default: replace ``path``.

    Returns:
        The path written.

    Raises:
        DataError: unreadable or truncated file.
    """
    import shutil

    path = Path(path)
    out_path = Path(out_path) if out_path is not None else path
    image = _load_header(path)
    header = image.header.copy()
    for field in IDENTIFYING_HEADER_FIELDS:
        if field in header.keys():  # NIfTI-2 has no db_name
            header[field] = b""
    # nibabel zeroes vox_offset in loaded headers; the data proxy keeps the real one.
    vox_offset = int(image.dataobj.offset)
    if vox_offset < header.sizeof_hdr + 4:
        raise DataError(path, f"the header's data offset {vox_offset} lies inside the header")
    header["vox_offset"] = vox_offset
    header_bytes = header.binaryblock
    # The 4 "extender" bytes after the header: all zero means "no extensions"; the bytes up to
    # vox_offset are then padding, and we zero them so no extension content survives.
    prefix = header_bytes + bytes(vox_offset - len(header_bytes))
    compressed = path.name.lower().endswith(".gz")
    out_compressed = out_path.name.lower().endswith(".gz")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.partial")
    opener_in = gzip.open if compressed else open
    opener_out = gzip.open if out_compressed else open
    try:
        with opener_in(path, "rb") as src, opener_out(tmp, "wb") as dst:
            if len(src.read(vox_offset)) != vox_offset:
                raise EOFError("the file ends inside its header")
            dst.write(prefix)
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(path, f"the file is truncated or corrupt; copying its voxel data failed ({exc})") from exc
    except BaseException:  # e.g. disk full while writing: not the researcher's file's fault
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)
    return out_path
