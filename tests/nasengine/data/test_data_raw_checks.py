"""The shared raw-byte check (``check_nifti_bytes``), label maps read as integers, and the
``test`` entries of dataset.json (issue 14 items 2, 3, 8; issue 13 item 1).

Every hostile file is built here from real bytes: gzip members of zeros are concatenated (a
valid multi-member gzip stream) so a file of a few MB decompresses to GiBs without the test ever
writing them.
"""
from __future__ import annotations

import gzip
import json
import struct
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from nasengine.data import DataError
from nasengine.data.checks import check_nifti_bytes, estimate_memory_bytes, load_checked_case, read_label
from nasengine.data.dataset import Case, load_dataset

ZEROS_16M = gzip.compress(bytes(16 << 20), compresslevel=9)  # ~16 KB that inflate to 16 MiB


def nii_bytes(data: np.ndarray, *, nifti2: bool = False, extension: bytes | None = None, big_endian=False) -> bytes:
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    image = cls(data, np.diag([1.5, 1.5, 2.0, 1.0]))
    if big_endian:
        image = cls(data.astype(data.dtype.newbyteorder(">")), image.affine,
                    header=image.header.as_byteswapped(">"))
    if extension is not None:
        image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", extension))
    return image.to_bytes()


def write_gz(path: Path, raw: bytes, *tail: bytes) -> Path:
    path.write_bytes(gzip.compress(raw, compresslevel=1) + b"".join(tail))
    return path


def volume(shape=(32, 32, 32), dtype=np.float32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 10, size=shape).astype(dtype)


# --- good files pass ---------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["nifti1", "nifti2", "extension", "big-endian", "plain-nii"])
def test_good_files_pass_with_their_facts(tmp_path, variant):
    data = volume((20, 18, 12))
    if variant == "plain-nii":
        path = tmp_path / "x.nii"
        path.write_bytes(nii_bytes(data))
    else:
        raw = nii_bytes(data, nifti2=variant == "nifti2", extension=b"PatientName=Doe" if variant == "extension" else None,
                        big_endian=variant == "big-endian")
        path = write_gz(tmp_path / "x.nii.gz", raw)
    facts = check_nifti_bytes(path)
    assert facts.shape == (20, 18, 12) and facts.data_bytes == data.nbytes
    assert facts.version == (2 if variant == "nifti2" else 1)
    assert facts.pixdim == (1.5, 1.5, 2.0)
    assert (facts.extension_bytes > 0) == (variant == "extension")
    assert nib.load(str(path)).shape == (20, 18, 12)  # nibabel agrees the file is fine


def test_a_multi_member_gzip_file_is_read_whole(tmp_path):
    raw = nii_bytes(volume((16, 16, 16)))
    path = tmp_path / "bgzip.nii.gz"
    path.write_bytes(b"".join(gzip.compress(raw[i : i + 5000]) for i in range(0, len(raw), 5000)))
    assert check_nifti_bytes(path).shape == (16, 16, 16)


# --- F3: a decompression bomb after the voxel data ---------------------------------------------
def test_gibs_of_zeros_after_the_voxel_data_are_refused_after_reading_about_the_voxel_data(tmp_path):
    raw = nii_bytes(volume((32, 32, 32)))  # 128 KiB of voxels
    members = 512  # 512 x 16 MiB = 8 GiB of zeros after the voxels, in ~8 MB of file
    path = write_gz(tmp_path / "bomb.nii.gz", raw, ZEROS_16M * members)
    size = path.stat().st_size
    assert size > 7_000_000
    with pytest.raises(DataError, match="more data after the voxel data") as caught:
        check_nifti_bytes(path)
    assert caught.value.path.name == "bomb.nii.gz"
    # Bounded: the voxel data's compressed bytes plus one 64 KB chunk, not the file, nor 8 GiB.
    stream_bytes = _bytes_read_by_check(path)
    assert stream_bytes < len(gzip.compress(raw, compresslevel=1)) + 3 * 65536, stream_bytes
    assert stream_bytes < size / 20


def _bytes_read_by_check(path: Path) -> int:
    """Compressed bytes the check read from disk, from the kernel's count (/proc/self/io)."""

    def rchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar")

    before = rchar()
    with pytest.raises(DataError):
        check_nifti_bytes(path)
    return rchar() - before


def test_truncated_and_trailing_data_in_both_forms(tmp_path):
    raw = nii_bytes(volume((16, 16, 16)))
    with pytest.raises(DataError, match="truncated"):
        check_nifti_bytes(write_gz(tmp_path / "cut.nii.gz", raw[:-100]))
    (tmp_path / "cut.nii").write_bytes(raw[:-100])
    with pytest.raises(DataError, match="truncated"):
        check_nifti_bytes(tmp_path / "cut.nii")
    (tmp_path / "long.nii").write_bytes(raw + b"hidden text")
    with pytest.raises(DataError, match="more data after the voxel data"):
        check_nifti_bytes(tmp_path / "long.nii")
    with pytest.raises(DataError, match="bytes after its compressed data|truncated or corrupt"):
        check_nifti_bytes(write_gz(tmp_path / "junk-after.nii.gz", raw, b"not gzip at all"))
    # zero padding after the last member is accepted (as Python's gzip accepts it)
    assert check_nifti_bytes(write_gz(tmp_path / "padded.nii.gz", raw, bytes(100))).shape == (16, 16, 16)


# --- F4: header extensions are sized before they are read --------------------------------------
def _with_extension_size(raw: bytes, esize: int, vox_offset: int | None = None) -> bytes:
    """A NIfTI-1 file whose first extension claims ``esize`` bytes (its content not supplied)."""
    header = bytearray(raw[:348])
    if vox_offset is not None:
        header[108:112] = struct.pack("<f", float(vox_offset))
    return bytes(header) + b"\x01\x00\x00\x00" + struct.pack("<ii", esize, 6) + b"x" * 8 + raw[352:]


def test_an_extension_claiming_a_gigabyte_is_refused_before_it_is_read(tmp_path):
    raw = nii_bytes(volume((8, 8, 8)), extension=b"a" * 8)  # vox_offset 368: one 16-byte extension
    path = write_gz(tmp_path / "ext.nii.gz", _with_extension_size(raw, 1 << 30))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="header extension says it is 1,073,741,824 bytes") as caught:
            check_nifti_bytes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "extension was not read" in caught.value.problem
    assert peak < 4 << 20, peak


def test_a_real_gigabyte_extension_in_a_one_megabyte_file_is_refused_from_the_data_offset(tmp_path):
    """The F4 file: the header's data offset lies past a 1 GiB extension of zeros (~1 MB gzip)."""
    data = volume((8, 8, 8))
    ext_size = 1 << 30
    raw = nii_bytes(data)
    vox_offset = 352 + ext_size
    header = bytearray(raw[:348])
    header[108:112] = struct.pack("<f", float(vox_offset))
    head = bytes(header) + b"\x01\x00\x00\x00" + struct.pack("<ii", ext_size, 6)
    body = ZEROS_16M * (ext_size // (16 << 20))  # the extension's content (the last 8 bytes short: fine)
    path = tmp_path / "gigext.nii.gz"
    path.write_bytes(gzip.compress(head) + body + gzip.compress(data.tobytes(order="F")))
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than the limit of 16,777,216"):
            check_nifti_bytes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert _bytes_read_by_check(path) < 200_000


# --- item 8: pixdims, item 3: memory -------------------------------------------------------------
@pytest.mark.parametrize("axis, value, shown", [(1, 0.0, "pixdim[1] is 0"), (2, -1.5, "pixdim[2] is -1.5"),
                                                 (3, float("nan"), "pixdim[3] is nan"), (3, float("inf"), "pixdim[3] is inf")])
def test_zero_negative_or_non_finite_pixdims_are_refused_with_the_field_named(tmp_path, axis, value, shown):
    raw = bytearray(nii_bytes(volume((8, 8, 8))))
    raw[76 + 4 * axis : 80 + 4 * axis] = struct.pack("<f", value)
    path = write_gz(tmp_path / "spacing.nii.gz", bytes(raw))
    with pytest.raises(DataError, match=shown.replace("[", r"\[").replace("]", r"\]")):
        check_nifti_bytes(path)


def test_memory_estimate_refuses_with_the_numbers(tmp_path):
    path = write_gz(tmp_path / "big.nii.gz", nii_bytes(volume((64, 64, 64), np.float64)))
    estimate = estimate_memory_bytes((64, 64, 64), 8, "image")
    assert estimate == 64**3 * 24
    assert check_nifti_bytes(path, max_memory_bytes=estimate).memory_bytes == estimate
    with pytest.raises(DataError, match=r"64 x 64 x 64 voxels of float64\) would take about 6 MB of memory, "
                                        r"more than the limit of 5 MB"):
        check_nifti_bytes(path, max_memory_bytes=5 << 20)


def test_not_nifti_at_all(tmp_path):
    (tmp_path / "note.nii.gz").write_text("a clinical note\n" * 40)
    with pytest.raises(DataError, match="not gzip-compressed .*not a NIfTI image"):
        check_nifti_bytes(tmp_path / "note.nii.gz")
    (tmp_path / "noise.nii").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError, match="not a NIfTI image"):
        check_nifti_bytes(tmp_path / "noise.nii")
    raw = bytearray(nii_bytes(volume((8, 8, 8))))
    raw[344:348] = b"ni1\x00"
    (tmp_path / "pair.nii").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="NIfTI pair"):
        check_nifti_bytes(tmp_path / "pair.nii")


# --- F5: labels as integers --------------------------------------------------------------------
def test_a_float64_label_map_is_read_as_uint8_slab_by_slab(tmp_path):
    shape = (192, 192, 128)  # 37.7 MB as float64
    label = np.zeros(shape, np.float64)
    label[20:160, 20:160, 10:100] = 1
    label[30:40, 30:40, 20:30] = 2
    path = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(label, np.eye(4)), path)
    tracemalloc.start()
    try:
        read = read_label(path, max_value=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read.data.dtype == np.uint8 and np.array_equal(read.data, label.astype(np.uint8))
    assert read.counts == {v: int((label == v).sum()) for v in (0, 1, 2)}
    assert peak < label.nbytes / 2, (peak, label.nbytes)  # never the whole float64 volume


def test_a_scaled_or_fractional_label_map_is_refused(tmp_path, write_nifti_file):
    image = volume((12, 12, 8))
    frac = np.zeros((12, 12, 8), np.float32)
    frac[2, 2, 2] = 0.5
    case = Case("c", write_nifti_file(tmp_path / "i.nii.gz", image), write_nifti_file(tmp_path / "l.nii.gz", frac))
    with pytest.raises(DataError, match=r"non-integer values such as \{0.5\}"):
        load_checked_case(case, {0: "bg", 1: "a"})
    big = np.zeros((12, 12, 8), np.int16)
    big[1, 1, 1] = 300
    case = Case("c", case.image, write_nifti_file(tmp_path / "big.nii.gz", big))
    with pytest.raises(DataError, match=r"label values \{300\} are not declared"):
        load_checked_case(case, {0: "bg", 1: "a"})


# --- dataset.json "test" entries ---------------------------------------------------------------
def test_test_entries_in_string_and_dict_form_are_kept_apart_from_training(make_msd, write_nifti_file):
    root = make_msd([(f"c{i}", volume((8, 8, 8), seed=i), np.zeros((8, 8, 8), np.uint8), np.eye(4)) for i in range(2)])
    write_nifti_file(root / "imagesTs" / "t1.nii.gz", volume((8, 8, 8)))
    write_nifti_file(root / "imagesTs" / "t2.nii.gz", volume((8, 8, 8)))
    write_nifti_file(root / "labelsTs" / "t2.nii.gz", np.zeros((8, 8, 8), np.uint8))
    description = json.loads((root / "dataset.json").read_text())
    description["test"] = ["./imagesTs/t1.nii.gz", {"image": "./imagesTs/t2.nii.gz", "label": "./labelsTs/t2.nii.gz"},
                           "./imagesTs/absent.nii.gz"]
    (root / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="absent.nii.gz: test image listed in dataset.json was not found"):
        load_dataset(root)
    spec = load_dataset(root, missing_test="skip")
    assert [c.case_id for c in spec.cases] == ["c0", "c1"]
    assert [(c.case_id, c.label.name if c.label else None) for c in spec.test_cases] == [("t1", None), ("t2", "t2.nii.gz")]
    assert [p.name for p in spec.test_images] == ["t1.nii.gz", "t2.nii.gz"]
    assert spec.missing_test == ["./imagesTs/absent.nii.gz"]
    description["test"][2] = "../outside.nii.gz"
    (root / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="outside the dataset folder"):
        load_dataset(root, missing_test="skip")  # only absent files are skipped
