"""Header inspection, reading, and every bad-input case of the checks."""

from __future__ import annotations

import gzip
import re

import nibabel as nib
import numpy as np
import pytest

from nasengine.data import Case, DataError, check_case, check_image, clear_header_text, inspect_nifti, read_nifti
from nasengine.data.checks import check_dataset
from nasengine.data.dataset import load_dataset

LABELS = {0: "background", 1: "organ", 2: "lesion"}
AFFINE = np.array([[-0.8, 0, 0, 10.0], [0, 0.8, 0, -5.0], [0, 0, 2.0, 3.0], [0, 0, 0, 1]])


def _case(tmp_path, write_nifti_file, image, label, image_affine=AFFINE, label_affine=AFFINE, name="case_001"):
    image_path = write_nifti_file(tmp_path / "imagesTr" / f"{name}.nii.gz", image, image_affine)
    label_path = write_nifti_file(tmp_path / "labelsTr" / f"label_{name[-3:]}.nii.gz", label, label_affine)
    return Case(case_id=name, image=image_path, label=label_path)


def _good(shape=(6, 5, 4)):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    label = np.zeros(shape, dtype=np.uint8)
    label[2:4, 2:4, 1:3] = 1
    label[2, 2, 2] = 2
    return image, label


def test_inspect_reads_header_facts(tmp_path, write_nifti_file):
    path = write_nifti_file(tmp_path / "img.nii.gz", np.zeros((6, 5, 4), np.int16), AFFINE)
    info = inspect_nifti(path)
    assert info.shape == (6, 5, 4)
    assert info.spatial_shape == (6, 5, 4)
    assert info.n_channels == 1
    assert info.spacing == pytest.approx((0.8, 0.8, 2.0))
    assert np.allclose(info.affine, AFFINE)
    assert info.dtype == "int16"
    assert info.n_voxels == 120
    assert info.to_dict()["file"] == "img.nii.gz"


def test_inspect_does_not_read_data_of_truncated_file_but_read_fails_clearly(tmp_path, write_nifti_file):
    path = write_nifti_file(tmp_path / "trunc.nii.gz", np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    info = inspect_nifti(path)  # the header is intact: header-first inspection succeeds
    assert info.shape == (20, 20, 20)
    with pytest.raises(DataError) as raised:
        read_nifti(path)
    assert str(raised.value).startswith("trunc.nii.gz: ")
    assert "truncated" in str(raised.value)


def test_truncated_uncompressed_nii_fails_clearly(tmp_path, write_nifti_file):
    path = write_nifti_file(tmp_path / "trunc.nii", np.ones((10, 10, 10), np.float32))
    path.write_bytes(path.read_bytes()[:1000])
    # uncompressed: detected from the header and the file size alone
    with pytest.raises(DataError, match=r"^trunc\.nii: the file is truncated: its header describes 4,352 bytes but the file holds only 1,000"):
        inspect_nifti(path)


def test_read_4d_msd_image_is_channels_first(tmp_path, write_nifti_file):
    data = np.random.default_rng(1).normal(size=(5, 4, 3, 2)).astype(np.float32)  # MSD: channels last
    path = write_nifti_file(tmp_path / "multi.nii.gz", data)
    info = inspect_nifti(path)
    assert (info.spatial_shape, info.n_channels, info.n_voxels) == ((5, 4, 3), 2, 120)
    volume = read_nifti(path, dtype=np.float32)
    assert volume.data.shape == (2, 5, 4, 3)
    assert np.array_equal(volume.data[1], data[..., 1])


def test_read_itk_vector_image(tmp_path, write_nifti_file):
    data = np.random.default_rng(1).normal(size=(5, 4, 3, 1, 2)).astype(np.float32)
    volume = read_nifti(write_nifti_file(tmp_path / "vec.nii.gz", data))
    assert volume.data.shape == (2, 5, 4, 3)
    assert np.array_equal(volume.data[0], data[..., 0, 0])


def test_good_case_passes(tmp_path, write_nifti_file):
    check_case(_case(tmp_path, write_nifti_file, *_good()), LABELS, n_channels=1)


@pytest.mark.parametrize("content", [b"hello, I am not an image\n", b""])
def test_text_or_empty_file_named_nii_gz(tmp_path, content):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        inspect_nifti(path)
    message = str(raised.value)
    assert message.startswith("notes.nii.gz: ")
    assert ("not gzip-compressed" in message) if content else ("empty" in message)


def test_text_file_named_nii(tmp_path):
    path = tmp_path / "notes.nii"
    path.write_text("x" * 400)
    with pytest.raises(DataError, match=r"^notes\.nii: the file cannot be read as a NIfTI image"):
        inspect_nifti(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"^nothing\.nii\.gz: file not found"):
        inspect_nifti(tmp_path / "nothing.nii.gz")


def test_absurd_header_size_rejected_before_reading(tmp_path):
    # A header claiming 4096^3 voxels followed by only a few bytes: must fail on the size cap
    # (from the header), not by trying to read 64 GiB.
    header = nib.Nifti1Header()
    header.set_data_shape((4096, 4096, 4096))
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352
    path = tmp_path / "huge.nii.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\0" * 4 + b"\0" * 100)
    with pytest.raises(DataError) as raised:
        read_nifti(path)
    assert str(raised.value).startswith("huge.nii.gz: the header says the image has 4096 x 4096 x 4096")
    assert "limit of 134,217,728" in str(raised.value)


def test_voxel_cap_is_configurable(tmp_path, write_nifti_file):
    path = write_nifti_file(tmp_path / "img.nii.gz", np.zeros((10, 10, 10), np.uint8))
    inspect_nifti(path, max_voxels=1000)
    with pytest.raises(DataError, match="more than the limit of 999"):
        inspect_nifti(path, max_voxels=999)


def test_wrong_dimensionality(tmp_path, write_nifti_file):
    path = write_nifti_file(tmp_path / "flat.nii.gz", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"^flat\.nii\.gz: the image has shape \(10, 10\)"):
        inspect_nifti(path)


def test_shape_mismatch(tmp_path, write_nifti_file):
    image, label = _good()
    case = _case(tmp_path, write_nifti_file, image, label[:, :, :3])
    with pytest.raises(DataError) as raised:
        check_case(case, LABELS)
    assert str(raised.value) == (
        "label_001.nii.gz: the label map's shape (6, 5, 3) does not match the image "
        "case_001.nii.gz shape (6, 5, 4)"
    )


def test_affine_mismatch_beyond_tolerance(tmp_path, write_nifti_file):
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.5
    case = _case(tmp_path, write_nifti_file, *_good(), label_affine=shifted)
    with pytest.raises(DataError, match=r"^label_001\.nii\.gz: the label map's position/orientation \(affine\) differs .* by up to 1\.5"):
        check_case(case, LABELS)


def test_affine_difference_within_tolerance_passes(tmp_path, write_nifti_file):
    nudged = AFFINE.copy()
    nudged[0, 3] += 1e-5
    check_case(_case(tmp_path, write_nifti_file, *_good(), label_affine=nudged), LABELS)
    with pytest.raises(DataError, match="affine"):
        check_case(_case(tmp_path, write_nifti_file, *_good(), label_affine=nudged, name="case_002"), LABELS, affine_tolerance=1e-7)


def test_undeclared_label_values(tmp_path, write_nifti_file):
    image, label = _good()
    label[0, 0, 0] = 7
    case = _case(tmp_path, write_nifti_file, image, label, name="case_003")
    with pytest.raises(DataError) as raised:
        check_case(case, LABELS)
    assert str(raised.value) == "label_003.nii.gz: label values {7} are not declared in dataset.json (declared: 0, 1, 2)"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_label(tmp_path, write_nifti_file, bad):
    image, label = _good()
    label = label.astype(np.float32)
    label[1, 1, 1] = bad
    with pytest.raises(DataError, match=r"^label_001\.nii\.gz: the label map contains NaN or infinite values"):
        check_case(_case(tmp_path, write_nifti_file, image, label), LABELS)


def test_non_integer_label(tmp_path, write_nifti_file):
    image, label = _good()
    label = label.astype(np.float32)
    label[1, 1, 1] = 0.5
    with pytest.raises(DataError, match=r"^label_001\.nii\.gz: .*non-integer values such as \{0\.5\}"):
        check_case(_case(tmp_path, write_nifti_file, image, label), LABELS)


def test_float_label_with_whole_numbers_passes(tmp_path, write_nifti_file):
    image, label = _good()
    check_case(_case(tmp_path, write_nifti_file, image, label.astype(np.float32)), LABELS)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_nan_or_inf_in_image(tmp_path, write_nifti_file, bad, word):
    image, label = _good()
    image[3, 3, 3] = bad
    with pytest.raises(DataError, match=rf"^case_001\.nii\.gz: the image contains 1 {word} voxel value"):
        check_case(_case(tmp_path, write_nifti_file, image, label), LABELS)


def test_truncated_label_in_case(tmp_path, write_nifti_file):
    image, label = _good((30, 30, 30))
    case = _case(tmp_path, write_nifti_file, image, np.random.default_rng(0).integers(0, 3, (30, 30, 30)).astype(np.uint8))
    data = case.label.read_bytes()
    case.label.write_bytes(data[: len(data) - 200])
    with pytest.raises(DataError, match=r"^label_001\.nii\.gz: the file is truncated or corrupt"):
        check_case(case, LABELS)


def test_channel_count_mismatch(tmp_path, write_nifti_file):
    image, label = _good()
    two_channels = np.stack([image, image], axis=-1)
    case = _case(tmp_path, write_nifti_file, two_channels, label)
    check_case(case, LABELS, n_channels=2)
    with pytest.raises(DataError, match=r"^case_001\.nii\.gz: the image has 2 channel\(s\) but the dataset declares 1"):
        check_case(case, LABELS, n_channels=1)


def test_4d_label_rejected(tmp_path, write_nifti_file):
    image, label = _good()
    case = _case(tmp_path, write_nifti_file, image, np.stack([label, label], axis=-1))
    with pytest.raises(DataError, match=r"^label_001\.nii\.gz: a label map must be a 3D volume"):
        check_case(case, LABELS)


def test_check_image_for_prediction(tmp_path, write_nifti_file):
    image, _ = _good()
    info = check_image(write_nifti_file(tmp_path / "in.nii.gz", image, AFFINE), n_channels=1)
    assert info.spatial_shape == (6, 5, 4)
    image[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        check_image(write_nifti_file(tmp_path / "bad.nii.gz", image, AFFINE))


def test_check_dataset_collects_every_bad_case(make_msd):
    image, label = _good()
    bad = label.copy()
    bad[0, 0, 0] = 9
    root = make_msd([("a", image, label, AFFINE), ("b", image, bad, AFFINE), ("c", image, label[:, :, :2], AFFINE)])
    problems = check_dataset(load_dataset(root))
    assert [p.path.name for p in problems] == ["b.nii.gz", "c.nii.gz"]
    assert "{9}" in str(problems[0]) and "shape" in str(problems[1])


def test_clear_header_text_keeps_data_and_geometry(tmp_path, write_nifti_file):
    data = np.random.default_rng(2).integers(-100, 100, (7, 6, 5)).astype(np.int16)
    path = tmp_path / "patient.nii.gz"
    image = nib.Nifti1Image(data, AFFINE)
    image.header["descrip"] = b"Doe^John 1970-01-01"
    image.header["aux_file"] = b"MRN123"
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=Doe^John"))
    nib.save(image, str(path))
    out = clear_header_text(path, tmp_path / "clean.nii.gz")
    raw = gzip.decompress(out.read_bytes())
    assert b"Doe^John" not in raw and b"MRN123" not in raw
    cleaned = nib.load(str(out))
    assert np.array_equal(np.asanyarray(cleaned.dataobj), data)
    assert np.array_equal(cleaned.affine, nib.load(str(path)).affine)
    assert len(cleaned.header.extensions) == 0
    assert re.fullmatch(rb"\x00*", cleaned.header["descrip"].tobytes())


def test_clear_header_text_across_compression_and_on_truncated_input(tmp_path, write_nifti_file):
    data = np.arange(60, dtype=np.int16).reshape(5, 4, 3)
    plain = write_nifti_file(tmp_path / "plain.nii", data, AFFINE)
    out = clear_header_text(plain, tmp_path / "sub" / "packed.nii.gz")
    assert np.array_equal(np.asanyarray(nib.load(str(out)).dataobj), data)
    packed = write_nifti_file(tmp_path / "big.nii.gz", np.random.default_rng(0).normal(size=(30, 30, 30)).astype(np.float32))
    packed.write_bytes(packed.read_bytes()[:-300])
    with pytest.raises(DataError, match=r"^big\.nii\.gz: the file is truncated or corrupt"):
        clear_header_text(packed, tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists() and not list(tmp_path.glob(".out*"))
