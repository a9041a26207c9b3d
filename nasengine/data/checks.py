"""Checks that a case's files are usable, with messages a researcher can act on.

Order matters, cheapest first:

1. ``check_nifti_bytes`` (the ONE shared first check of every uploaded file, dataset import and
   prediction upload alike): from the raw bytes, before nibabel or any copy touches the file:
   the header's size, magic, dimensions, data type and voxel sizes (pixdim), each header
   extension's size (read from its 8-byte preamble, never its content), the voxel cap, then one
   streaming pass in bounded memory that the data is exactly as long as the header says:
   nothing missing (truncated) and nothing after it (trailing data, the decompression bomb of a
   .nii.gz hiding gigabytes of zeros after its voxels). It also estimates from the header the
   memory that preprocessing the volume takes, refused over a cap.
2. The header checks through nibabel (``inspect_nifti``: dimensionality, affine, image/label
   agreement) before any voxel data is read.
3. The data checks (NaN/Inf, label values whole and declared) while reading.

``load_checked_case`` returns the arrays it read so that callers that need them anyway
(fingerprint, preprocessing) read every file once. Label maps are read as integers
(``io.read_label_map``), never as float64 volumes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .dataset import Case, DatasetSpec
from .errors import DataError
from .io import (
    _GZIP_MAGIC,
    DEFAULT_MAX_VOXELS,
    DecompressedStream,
    NiftiInfo,
    NiftiVolume,
    inspect_nifti,
    read_label_map,
    read_nifti,
)

#: Largest header plus extensions (= the voxel data offset) accepted. Extensions may hold a whole
#: DICOM header (tens of KB); megabytes mean a broken or hostile file.
DEFAULT_MAX_HEADER_BYTES: int = 16 * 1024 * 1024
#: Largest estimated preprocessing memory of one case (see ``estimate_memory_bytes``). 6 GiB:
#: a 512^3 int16 CT with its label (~3.2 GB) passes; the 512x512x1024 volume with a float64 label
#: that peaked a worker at 8.2 GB does not. Deployments with bigger workers raise it.
DEFAULT_MAX_MEMORY_BYTES: int = 6 * 1024**3

_NIFTI1_MAGIC = b"n+1\0"
_NIFTI1_PAIR_MAGIC = b"ni1\0"
_NIFTI2_MAGIC = b"n+2\0"


@dataclass(frozen=True)
class NiftiBytes:
    """What the raw bytes of a NIfTI file say (see :func:`check_nifti_bytes`).

    Attributes:
        path: the file.
        version: 1 or 2 (NIfTI-1 / NIfTI-2).
        header: the parsed header (nibabel header object made from the bytes alone).
        shape: the stored shape ``dim[1:dim[0]+1]``.
        dtype: the on-disk voxel type (with byte order).
        vox_offset: where the voxel data starts (= header + extensions + padding).
        extension_bytes: total size of the header extensions.
        data_bytes: voxel data length the header describes.
        pixdim: voxel sizes ``pixdim[1..3]`` (mm).
        compressed_bytes_read: bytes read from disk by the check.
        memory_bytes: estimated preprocessing memory of this volume (see ``role``).
        role: ``"image"`` or ``"label"`` (what the estimate assumed).
    """

    path: Path
    version: int
    header: nib.Nifti1Header
    shape: tuple[int, ...]
    dtype: np.dtype
    vox_offset: int
    extension_bytes: int
    data_bytes: int
    pixdim: tuple[float, float, float]
    compressed_bytes_read: int
    memory_bytes: int
    role: str

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape, dtype=object))


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 / 10 else f"{n / 1024**2:.0f} MB"


def estimate_memory_bytes(shape, itemsize: int, role: str) -> int:
    """Peak memory of reading and preprocessing one volume, from its header.

    Image (``C`` channels, ``N`` voxels per channel): the on-disk array nibabel reads (itemsize)
    plus the float32 volume, its channels-first copy, the reoriented copy and the resampled,
    normalised copy (4 x float32): ``N*C*(itemsize + 16)``. Resampling to a finer grid costs
    more; the plan's target spacing is not known at upload, so the estimate assumes the grid
    stays the same size (the choice left open: a lower bound on that step).

    Label map (``N`` voxels): read as uint8 slab by slab (``io.read_label_map``), then the
    class map, looked up slab by slab (``preprocess.label_classes``), and its reoriented copy:
    ``N*(1 + 1 + 1)``.
    """
    n = int(np.prod([int(v) for v in shape], dtype=object))
    if role == "label":
        return n * 3
    return n * (int(itemsize) + 16)


def _refuse(path: Path, problem: str) -> DataError:
    return DataError(path, problem)


def _parse_header(path: Path, first: bytes) -> tuple[int, nib.Nifti1Header, str]:
    """(version, header, byte order) from the first 540 bytes, or DataError (not NIfTI)."""
    not_nifti = "the file does not start with a NIfTI-1 or NIfTI-2 header; it is not a NIfTI image"
    if len(first) < 348:
        raise _refuse(path, f"the file holds only {len(first)} bytes, fewer than a NIfTI header (348); it is not a NIfTI image")
    for order in ("<", ">"):
        sizeof_hdr = struct.unpack(order + "i", first[:4])[0]
        if sizeof_hdr == 348:
            magic = first[344:348]
            if magic == _NIFTI1_PAIR_MAGIC:
                raise _refuse(path, "this is the header half of a NIfTI pair (.hdr/.img); save the image as one .nii or .nii.gz file")
            if magic != _NIFTI1_MAGIC:
                raise _refuse(path, f"{not_nifti} (its magic bytes are {magic!r}, not 'n+1')")
            return 1, nib.Nifti1Header(first[:348], endianness=order, check=False), order
        if sizeof_hdr == 540:
            if len(first) < 540:
                raise _refuse(path, "the file ends inside its NIfTI-2 header (540 bytes); it is truncated")
            if first[4:8] != _NIFTI2_MAGIC:
                raise _refuse(path, f"{not_nifti} (its magic bytes are {first[4:8]!r}, not 'n+2')")
            return 2, nib.Nifti2Header(first[:540], endianness=order, check=False), order
    raise _refuse(path, not_nifti)


def check_nifti_bytes(
    path: str | Path,
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY_BYTES,
    role: str = "image",
    header_only: bool = False,
) -> NiftiBytes:
    """The cheap checks of one NIfTI file from its raw bytes, in bounded memory (run first).

    Checks, in this order, stopping at the first problem: a ``.gz`` file is gzip; the header is
    NIfTI-1/2 single-file; ``dim`` describes 1 to 7 non-empty axes within ``max_voxels``; the
    data type is known; ``pixdim[1..3]`` are positive finite numbers; the data offset lies after
    the header and within ``max_header_bytes``; each extension's declared size fits before the
    data (its content is skipped, never held); the preprocessing memory estimate is within
    ``max_memory_bytes``; then one streaming pass (64 KB compressed, 1 MB decompressed at a time)
    finds exactly ``vox_offset + data_bytes`` bytes: not fewer (truncated), not one more
    (trailing data, decompression bombs). A .nii is checked from its size, without reading.

    Args:
        path: the file.
        max_voxels: largest ``prod(dim)``.
        max_header_bytes: largest data offset (header + extensions).
        max_memory_bytes: cap on :func:`estimate_memory_bytes`; ``None`` skips it.
        role: ``"image"`` or ``"label"`` (for the memory estimate).
        header_only: stop after the header (first 540 bytes): no extension walk, no data pass
            (for estimates across files before any of them is streamed).

    Returns:
        NiftiBytes.

    Raises:
        DataError: naming the file and what is wrong (no server paths).
    """
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise _refuse(path, "the file is empty (0 bytes)")
    gz = path.name.lower().endswith(".gz")
    if gz:
        with open(path, "rb") as handle:
            head = handle.read(64)
        if not head.startswith(_GZIP_MAGIC):
            preview = head[:24].decode("ascii", errors="replace").strip()
            looks_text = all(32 <= b < 127 or b in (9, 10, 13) for b in head)
            hint = f" (it starts with the text {preview!r})" if looks_text else ""
            raise _refuse(path, f"the file is named .gz but is not gzip-compressed{hint}; it is not a NIfTI image")
    try:
        with DecompressedStream(path) as stream:
            first = stream.read(4)
            sizes = {struct.unpack(o + "i", first)[0] for o in "<>"} if len(first) == 4 else set()
            header_size = 540 if 540 in sizes else 348
            first += stream.read(header_size - len(first))
            version, header, order = _parse_header(path, first)
            shape, dtype, vox_offset, data_bytes, pixdim = _header_facts(
                path, header, header_size, max_voxels, max_header_bytes
            )
            memory = estimate_memory_bytes(shape, dtype.itemsize, role)
            if max_memory_bytes is not None and memory > max_memory_bytes:
                what = "label map" if role == "label" else "volume"
                raise _refuse(
                    path,
                    f"preprocessing this {what} ({' x '.join(map(str, shape))} voxels of {dtype.name}) "
                    f"would take about {_gib(memory)} of memory, more than the limit of "
                    f"{_gib(max_memory_bytes)}; crop or downsample it first",
                )
            if header_only:
                return NiftiBytes(
                    path=path, version=version, header=header, shape=shape, dtype=dtype, vox_offset=vox_offset,
                    extension_bytes=0, data_bytes=data_bytes, pixdim=pixdim,
                    compressed_bytes_read=stream.compressed_bytes_read, memory_bytes=memory, role=role,
                )
            position = header_size
            extension_bytes = 0
            extender = stream.read(4)
            position += len(extender)
            if len(extender) < 4:
                raise EOFError("the file ends inside its header")
            if extender[:1] != b"\0":
                # Each extension: esize (int32, the whole extension), ecode, content. Only the
                # 8-byte preamble is read; the content is streamed past, never held.
                while position + 8 <= vox_offset:
                    preamble = stream.read(8)
                    if len(preamble) < 8:
                        raise EOFError("the file ends inside its header extensions")
                    esize = struct.unpack(order + "i", preamble[:4])[0]
                    if esize < 8 or position + esize > vox_offset:
                        raise _refuse(
                            path,
                            f"a header extension says it is {esize:,} bytes, but "
                            f"{vox_offset - position:,} bytes remain before the voxel data; "
                            "the header is broken (the extension was not read)",
                        )
                    if stream.skip(esize - 8) != esize - 8:
                        raise EOFError("the file ends inside its header extensions")
                    extension_bytes += esize
                    position += esize
            if stream.skip(vox_offset - position) != vox_offset - position:
                raise EOFError("the file ends inside its header")
            expected = vox_offset + data_bytes
            if not gz:
                if size < expected:
                    raise _refuse(
                        path, f"the file is truncated: its header describes {expected:,} bytes but the file holds only {size:,}"
                    )
                trailing = size > expected
            else:
                got = stream.skip(data_bytes)
                if got != data_bytes:
                    raise _refuse(
                        path,
                        f"the file is truncated: its header describes {expected:,} bytes of uncompressed "
                        f"data but it holds only {vox_offset + got:,}",
                    )
                trailing = bool(stream.read(1))
            read = stream.compressed_bytes_read
    except DataError:
        raise
    except (EOFError, zlib.error, ValueError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _refuse(path, f"the file is truncated or corrupt ({reason})") from exc
    if trailing:
        raise _refuse(
            path,
            "the file holds more data after the voxel data than its header describes; "
            "save it again with a NIfTI tool (e.g. nibabel or ITK-SNAP) and upload that",
        )
    return NiftiBytes(
        path=path, version=version, header=header, shape=shape, dtype=dtype, vox_offset=vox_offset,
        extension_bytes=extension_bytes, data_bytes=data_bytes, pixdim=pixdim,
        compressed_bytes_read=read, memory_bytes=memory, role=role,
    )


def _header_facts(path: Path, header, header_size: int, max_voxels: int, max_header_bytes: int):
    """(shape, dtype, vox_offset, data_bytes, pixdim) from a parsed header, or DataError."""
    dim = [int(v) for v in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise _refuse(path, f"the header's dim[0] is {dim[0]}; a NIfTI image has 1 to 7 dimensions. The header is broken")
    shape = tuple(dim[1 : dim[0] + 1])
    if min(shape) < 1:
        raise _refuse(path, f"the header says the image has shape {shape}, which has an empty axis")
    n_voxels = int(np.prod(shape, dtype=object))
    if n_voxels > max_voxels:
        raise _refuse(
            path,
            f"the header says the image has {' x '.join(map(str, shape))} = {n_voxels:,} voxels, "
            f"more than the limit of {max_voxels:,}; the header is probably broken "
            "(or the volume must be cropped or downsampled first)",
        )
    try:
        dtype = header.get_data_dtype()
    except Exception as exc:  # nibabel: HeaderDataError / KeyError for unknown codes
        code = int(header["datatype"])
        raise _refuse(path, f"the header's data type code {code} is not a known NIfTI data type") from exc
    if dtype.fields is not None or dtype.kind in "cOSUV" or dtype.itemsize == 0:
        raise _refuse(path, f"voxel data type {dtype} is not supported (expected integers or floats)")
    pixdim = [float(v) for v in header["pixdim"]]
    for axis in range(1, min(dim[0], 3) + 1):
        value = pixdim[axis]
        if not np.isfinite(value) or value <= 0:
            raise _refuse(
                path,
                f"the header's voxel size pixdim[{axis}] is {value:g}; voxel sizes must be positive "
                "numbers of mm (a zero or negative size would make every volume in mL wrong)",
            )
    raw_offset = float(header["vox_offset"])
    if not np.isfinite(raw_offset) or raw_offset != int(raw_offset):
        raise _refuse(path, f"the header's data offset vox_offset {raw_offset:g} is not a whole number of bytes")
    vox_offset = int(raw_offset)
    if vox_offset < header_size + 4:
        raise _refuse(path, f"the header's data offset {vox_offset} lies inside the header")
    if vox_offset > max_header_bytes:
        raise _refuse(
            path,
            f"the header and its extensions take {vox_offset:,} bytes, more than the limit of "
            f"{max_header_bytes:,}; the header is probably broken",
        )
    data_bytes = n_voxels * dtype.itemsize
    spacing = (pixdim[1], pixdim[2] if dim[0] >= 2 else 1.0, pixdim[3] if dim[0] >= 3 else 1.0)
    return shape, dtype, vox_offset, data_bytes, spacing

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


def read_label(path: str | Path, *, max_value: int = 255):
    """A label map's integer voxels (``io.read_label_map``) from its lazily loaded header."""
    image = nib.load(str(path))
    return read_label_map(
        path, header=image.header, vox_offset=int(image.dataobj.offset), shape=tuple(image.shape), max_value=max_value
    )


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
    _, label_info = check_headers(case, n_channels=n_channels, max_voxels=max_voxels, affine_tolerance=affine_tolerance)
    image = read_nifti(case.image, dtype=np.float32, max_voxels=max_voxels)
    finite = np.isfinite(image.data)
    if not finite.all():
        n_nan = int(np.isnan(image.data).sum())
        n_inf = int((~finite).sum()) - n_nan
        what = " and ".join(
            part for part in (f"{n_nan:,} NaN" if n_nan else "", f"{n_inf:,} infinite" if n_inf else "") if part
        )
        raise DataError(case.image, f"the image contains {what} voxel value(s); every voxel must be a finite number")
    del finite
    if case.label is None:
        return CheckedCase(image=image, label=None, label_info=None, label_values=[], label_counts={})
    declared = _declared(labels)
    label_map = read_label(case.label, max_value=max(declared, default=255))
    if label_map.non_integer:
        if not all(np.isfinite(v) for v in label_map.non_integer):
            raise DataError(case.label, "the label map contains NaN or infinite values; labels must be whole numbers")
        raise DataError(
            case.label,
            f"the label map contains non-integer values such as {_format_values(label_map.non_integer[:5])}; "
            "labels must be whole numbers",
        )
    label = label_map.data
    label_counts = dict(label_map.counts)
    undeclared_outside = list(label_map.out_of_range)
    present = sorted(label_counts)
    undeclared = sorted(set(present) - set(declared) | set(undeclared_outside))
    if undeclared:
        raise DataError(
            case.label,
            f"label values {_format_values(undeclared)} are not declared in dataset.json "
            f"(declared: {', '.join(map(str, declared))})",
        )
    return CheckedCase(
        image=image, label=label, label_info=label_info, label_values=present, label_counts=label_counts
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
