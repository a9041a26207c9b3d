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
from typing import BinaryIO

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


class DecompressedStream:
    """Sequential reader of a ``.nii`` / ``.nii.gz`` file's (decompressed) bytes in bounded memory.

    Nothing is read ahead beyond one compressed chunk, and ``read(n)`` never holds more than
    ``n`` decompressed bytes, so a small file that inflates to gigabytes costs only what is
    asked for. Multi-member gzip files (bgzip) and zero padding after the last member (as
    Python's gzip accepts) are read; any other bytes after the compressed data are an error.

    Attributes:
        compressed_bytes_read: bytes read from the file so far (for tests and benchmarks).
        position: decompressed bytes handed out so far.

    Errors: ``EOFError`` when the compressed data ends early, ``zlib.error`` for corrupt data,
    ``ValueError`` for non-gzip bytes after the compressed data.
    """

    CHUNK = 1 << 16

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.compressed = self.path.name.lower().endswith(".gz")
        self._file: BinaryIO = open(self.path, "rb")
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.compressed else None
        self._tail = b""  # compressed bytes given to the inflater but not yet consumed
        self._finished = False
        self.compressed_bytes_read = 0
        self.position = 0

    def __enter__(self) -> DecompressedStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _read_file(self, n: int) -> bytes:
        data = self._file.read(n)
        self.compressed_bytes_read += len(data)
        return data

    def _next_member(self, rest: bytes) -> bool:
        """After a gzip member: start the next one; False at the (zero-padded) end of the file."""
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._read_file(self.CHUNK)
            if not rest:
                return False
        while len(rest) < 2:
            more = self._read_file(self.CHUNK)
            if not more:
                break
            rest += more
        if not rest.startswith(_GZIP_MAGIC):
            raise ValueError("the file holds bytes after its compressed data")
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = rest
        return True

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the data)."""
        if n <= 0 or self._finished:
            return b""
        if not self.compressed:
            data = self._read_file(n)
            self.position += len(data)
            return data
        out = bytearray()
        while len(out) < n:
            inflater = self._inflater
            if inflater.eof:
                # After the end of a member all further input is in unused_data (zlib may also
                # leave the same bytes in unconsumed_tail: using both would double them).
                if not self._next_member(inflater.unused_data):
                    self._finished = True
                    break
                continue
            if not self._tail:
                self._tail = self._read_file(self.CHUNK)
                if not self._tail:
                    raise EOFError("the compressed data ends before its end marker")
            out += inflater.decompress(self._tail, n - len(out))
            self._tail = inflater.unconsumed_tail
        self.position += len(out)
        return bytes(out)

    def skip(self, n: int) -> int:
        """Discard ``n`` bytes in bounded chunks (seek for uncompressed files); return how many."""
        if not self.compressed:
            size = self.path.stat().st_size
            target = min(self._file.tell() + max(n, 0), size)
            skipped = target - self._file.tell()
            self._file.seek(target)
            self.position += skipped
            return skipped
        skipped = 0
        while skipped < n:
            chunk = self.read(min(n - skipped, 1 << 20))
            if not chunk:
                break
            skipped += len(chunk)
        return skipped


@dataclass
class LabelMap:
    """A label map read as integers (see :func:`read_label_map`).

    Attributes:
        data: ``[X, Y, Z]`` ``uint8`` (``uint16`` when values above 255 may be stored).
        counts: value -> voxel count, for the values present that fit ``data``'s type.
        non_integer: up to 10 example values that are not whole numbers (NaN/Inf included).
        out_of_range: up to 10 example whole values that are negative or too large to store.
    """

    data: np.ndarray
    counts: dict[int, int]
    non_integer: list[float]
    out_of_range: list[int]


def read_label_map(
    path: str | Path,
    *,
    header,
    vox_offset: int,
    shape: tuple[int, ...],
    max_value: int = 255,
    slab_bytes: int = 4 << 20,
) -> LabelMap:
    """Read a 3D label map as integers, slab by slab, never as a whole float64 volume.

    nibabel hands a float (or scaled) label map out as float64: 8 bytes per voxel before it is
    rounded, and another copy to make it integer. Here the voxel data is streamed in z-slabs of
    about ``slab_bytes``, scaled and checked per slab, and written into one ``uint8`` array
    (``uint16`` when ``max_value`` > 255): the peak is the output plus one slab.

    Args:
        path: the ``.nii`` / ``.nii.gz`` file (its header already checked).
        header: its parsed ``Nifti1Header`` / ``Nifti2Header`` (dtype, byte order, scaling).
        vox_offset: where the voxel data starts.
        shape: the stored shape; every axis after the third must be 1.
        max_value: the largest label value declared (picks the output type).
        slab_bytes: on-disk bytes read per slab.

    Returns:
        LabelMap; values that are not whole numbers or do not fit are stored as 0 and listed.

    Raises:
        DataError: truncated or corrupt data, a label map that is not 3D or not numeric.
    """
    path = Path(path)
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        raise DataError(path, f"a label map must be a 3D volume, but it has shape {tuple(shape)}")
    x, y, z = (int(n) for n in shape[:3])
    dtype = header.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "iubf":
        raise DataError(path, f"label data type {dtype} is not an integer type")
    slope, inter = header.get_slope_inter()
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    scaled = (slope, inter) != (1.0, 0.0)
    out_dtype = np.uint8 if max_value <= 255 else np.uint16
    top = int(np.iinfo(out_dtype).max)
    out = np.empty((x, y, z), dtype=out_dtype, order="F")  # z-slabs are contiguous in F order
    counts = np.zeros(top + 1, dtype=np.int64)
    non_integer: set[float] = set()
    out_of_range: set[int] = set()
    plane = x * y * dtype.itemsize
    dz = max(1, slab_bytes // max(plane, 1))
    try:
        with DecompressedStream(path) as stream:
            if stream.skip(vox_offset) != vox_offset:
                raise EOFError("the file ends inside its header")
            for z0 in range(0, z, dz):
                z1 = min(z, z0 + dz)
                raw = stream.read(plane * (z1 - z0))
                if len(raw) != plane * (z1 - z0):
                    raise EOFError("the voxel data ends early")
                slab = np.frombuffer(raw, dtype=dtype).reshape((x, y, z1 - z0), order="F")
                if scaled:
                    slab = slab * slope + inter
                if slab.dtype.kind == "f":
                    rounded = np.rint(slab)
                    wrong = ~np.isfinite(slab) | (rounded != slab)
                    if wrong.any():
                        if len(non_integer) < 10:
                            non_integer.update(np.unique(slab[wrong])[:10].tolist())
                        rounded[wrong] = 0
                    slab = rounded
                outside = (slab < 0) | (slab > top)
                if outside.any():
                    if len(out_of_range) < 10:
                        out_of_range.update(int(v) for v in np.unique(slab[outside])[:10].tolist())
                    slab = np.where(outside, 0, slab)
                part = slab.astype(out_dtype, copy=False)
                out[:, :, z0:z1] = part
                counts += np.bincount(part.ravel(order="F"), minlength=counts.size)
                del raw, slab, part
    except (EOFError, zlib.error, ValueError) as exc:
        raise DataError(path, f"the file is truncated or corrupt; reading its voxel data failed ({exc})") from exc
    # The zeros stored for bad voxels are not background voxels.
    return LabelMap(
        data=out,
        counts={int(v): int(counts[v]) for v in np.flatnonzero(counts)},
        non_integer=sorted(non_integer, key=lambda v: (not np.isfinite(v), v))[:10],
        out_of_range=sorted(out_of_range)[:10],
    )


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
