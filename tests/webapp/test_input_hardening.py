"""Inputs that must never balloon, mislead or answer 500 (issue 14 items 2, 3, 5, 7, 8) and MSD
archives as MSD publishes them (issue 13 item 1), through the real services and API.

The import runs in this process (``dataset_import`` is what the Celery task calls); the worker
path is covered by test_web_import.py and the browser test. Hostile files are generated here:
gzip members of zeros concatenate into a valid stream that inflates to GiBs while the file stays
a few MB, so nothing large is ever written by the test.
"""
from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import webcorpus as corpus
from django.core.files.uploadedfile import SimpleUploadedFile
from predictiontesting import engine_bundle, make_engine_model
from webtesting import uploaded_file

from nasengine.data.dataset import load_dataset
from webapp.datasets import services
from webapp.datasets.models import Dataset
from webapp.predictions.models import Prediction

pytestmark = pytest.mark.django_db

ZEROS_16M = gzip.compress(bytes(16 << 20), compresslevel=9)
S = Dataset.Status


def io_counters() -> dict[str, int]:
    """This process's bytes read and written through system calls (the kernel's count)."""
    counters = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, value = line.split(":")
        counters[key] = int(value)
    return counters


def volume_bytes(shape=(12, 12, 10), seed=0) -> tuple[np.ndarray, bytes]:
    data = np.random.default_rng(seed).normal(100, 10, size=shape).astype(np.float32)
    return data, nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])).to_bytes()


def bomb(path: Path, members: int = 512) -> Path:
    """A .nii.gz whose voxel data is followed by ``members`` x 16 MiB of zeros (8 GiB at 512)."""
    _, raw = volume_bytes()
    path.write_bytes(gzip.compress(raw) + ZEROS_16M * members)
    return path


def gigabyte_extension(path: Path) -> Path:
    """The F4 file: a 1 GiB header extension of zeros before 12x12x10 voxels, about 1 MB on disk."""
    data, raw = volume_bytes()
    size = 1 << 30
    header = bytearray(raw[:348])
    header[108:112] = struct.pack("<f", float(352 + size))
    head = bytes(header) + b"\x01\x00\x00\x00" + struct.pack("<ii", size, 6)
    path.write_bytes(gzip.compress(head) + ZEROS_16M * (size >> 24) + gzip.compress(data.tobytes(order="F")))
    return path


def zero_pixdim(path: Path, axis: int = 3, value: float = 0.0) -> Path:
    _, raw = volume_bytes()
    raw = bytearray(raw)
    raw[76 + 4 * axis : 80 + 4 * axis] = struct.pack("<f", value)
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


# --- the prediction upload: cheap checks before any copy ----------------------------------------
@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


@pytest.fixture
def model_world(make_user, make_project, bundle):
    owner = make_user("owner")
    project = make_project(owner, name="Clinic")
    return {"owner": owner, "project": project, "model": make_engine_model(project, bundle[0])}


def _prediction_files(media_root: Path) -> list[Path]:
    root = media_root / "predictions"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_small_gz_hiding_8_gib_after_its_voxels_is_refused_on_the_prediction_path_without_a_copy(
    client, model_world, tmp_path, media_root
):
    path = bomb(tmp_path / "scan.nii.gz")
    size = path.stat().st_size
    assert size > 7_000_000
    client.force_login(model_world["owner"])
    file = uploaded_file(path)
    before = io_counters()
    response = client.post(f"/api/models/{model_world['model'].pk}/infer", {"files": [file]})
    after = io_counters()
    assert response.status_code == 400, response.content
    text = str(response.json())
    assert "scan.nii.gz" in text and "more data after the voxel data" in text
    assert Prediction.objects.count() == 0 and _prediction_files(media_root) == []
    # No copy: what was written is the upload's temporary file (once, maybe moved across file
    # systems), never the 8 GiB it inflates to; what was read is bounded likewise.
    written, read = after["wchar"] - before["wchar"], after["rchar"] - before["rchar"]
    assert written < 3 * size, written
    assert read < 3 * size, read


def test_a_gigabyte_header_extension_is_refused_on_the_prediction_path_before_it_is_read(
    client, model_world, tmp_path, media_root
):
    path = gigabyte_extension(tmp_path / "ext.nii.gz")
    assert path.stat().st_size < 2 << 20
    client.force_login(model_world["owner"])
    before = io_counters()
    response = client.post(f"/api/models/{model_world['model'].pk}/infer", {"files": [uploaded_file(path)]})
    after = io_counters()
    assert response.status_code == 400
    # (the float32 vox_offset field rounds 1 GiB + 352 to the next representable value)
    assert "header and its extensions take 1,073,742,208 bytes, more than the limit" in str(response.json())
    assert after["rchar"] - before["rchar"] < 8 << 20
    assert _prediction_files(media_root) == []


def test_zero_pixdim_and_memory_cap_on_the_prediction_path(client, model_world, tmp_path, settings):
    client.force_login(model_world["owner"])
    url = f"/api/models/{model_world['model'].pk}/infer"
    response = client.post(url, {"files": [uploaded_file(zero_pixdim(tmp_path / "flat.nii.gz"))]})
    assert response.status_code == 400 and "pixdim[3] is 0" in str(response.json())
    settings.VOXELSEARCH = {**settings.VOXELSEARCH, "MAX_PREPROCESS_BYTES": 10_000}
    _, raw = volume_bytes()
    (tmp_path / "ok.nii.gz").write_bytes(gzip.compress(raw))
    response = client.post(url, {"files": [uploaded_file(tmp_path / "ok.nii.gz")]})
    assert response.status_code == 400
    assert "12 x 12 x 10 voxels of float32) would take about 0 MB of memory" in str(response.json())


def test_infer_without_a_body_is_a_400_not_a_500(client, model_world):
    client.force_login(model_world["owner"])
    url = f"/api/models/{model_world['model'].pk}/infer"
    response = client.post(url)
    assert response.status_code == 400 and "Choose one or more NIfTI volumes" in str(response.json())
    response = client.post(url, data=json.dumps({"cases": "x", "attention": 3}), content_type="application/json")
    assert response.status_code in (400, 404, 415), response.content  # the endpoint takes multipart


# --- JSON nesting ----------------------------------------------------------------------------
DEEP = "[" * 100_000 + "]" * 100_000


def test_json_nested_100000_deep_is_a_400_on_json_endpoints(client, make_user, make_project, tmp_path):
    user = make_user("deep")
    project = make_project(user, name="Deep")
    dataset = Dataset.objects.create(project=project, name="d", source="files", status=S.INVALID)
    client.force_login(user)
    for method, url in [
        ("post", "/api/projects/"),
        ("patch", f"/api/projects/{project.pk}/"),
        ("post", f"/api/projects/{project.pk}/members/"),
        ("patch", f"/api/datasets/{dataset.pk}/"),
        ("post", f"/api/projects/{project.pk}/runs/"),
    ]:
        response = getattr(client, method)(url, data=DEEP, content_type="application/json")
        assert response.status_code == 400, (url, response.status_code, response.content[:300])
        assert "nested deeper than 64 levels" in response.json()["detail"], url


def test_json_nested_100000_deep_on_the_token_endpoint(client):
    response = client.post("/api/auth/token/", data=DEEP, content_type="application/json")
    assert response.status_code == 400


def test_deep_label_declarations_are_a_clear_message(make_user, make_project):
    user = make_user()
    with pytest.raises(Exception) as caught:
        services.dataset_upload(project=make_project(user), actor=user, files=[SimpleUploadedFile("a.nii.gz", b"x")],
                                labels="{" + '"a":{' * 2000 + "}" * 2001)
    assert "nested deeper than 64 levels" in str(caught.value)


# --- imports: MSD as published, per-file problems, caps ---------------------------------------
def _import_folder(user, project, folder: Path) -> Dataset:
    return services.dataset_import_folder(project=project, actor=user, folder=folder, queue=False)


def _msd(folder: Path, n_cases: int = 2, test: list | None = None, labels=None) -> Path:
    corpus.msd_folder(folder, n_cases=n_cases, labels=labels)
    if test is not None:
        description = json.loads((folder / "dataset.json").read_text())
        description["test"] = test
        description["numTest"] = len(test)
        (folder / "dataset.json").write_text(json.dumps(description))
    return folder


def test_an_msd_archive_listing_absent_test_images_imports_with_notes(make_user, make_project, tmp_path, media_root):
    user = make_user()
    folder = _msd(tmp_path / "Task", test=[f"./imagesTs/case_{i:03d}.nii.gz" for i in range(5, 8)])
    dataset = _import_folder(user, make_project(user), folder)
    assert dataset.status == S.READY, dataset.problems
    assert dataset.num_cases == 2 and dataset.num_test_cases == 0
    assert [n["file"] for n in dataset.notes] == ["case_005.nii.gz", "case_006.nii.gz", "case_007.nii.gz"]
    assert all("not included" in n["note"] for n in dataset.notes)


def test_present_images_ts_and_labels_ts_become_the_test_split(make_user, make_project, tmp_path, client):
    user = make_user()
    folder = _msd(tmp_path / "Task", test=["./imagesTs/case_100.nii.gz", "./imagesTs/absent.nii.gz"])
    image, label = corpus.case_arrays(7)
    corpus.write_nifti(folder / "imagesTs" / "case_100.nii.gz", image)
    corpus.write_nifti(folder / "labelsTs" / "case_100.nii.gz", label)
    corpus.write_nifti(folder / "imagesTs" / "case_101.nii.gz", image)  # present, not listed, no label
    dataset = _import_folder(user, make_project(user), folder)
    assert dataset.status == S.READY, dataset.problems
    assert dataset.num_cases == 2 and dataset.num_test_cases == 2
    assert [n["file"] for n in dataset.notes] == ["absent.nii.gz"]
    test = list(dataset.cases.filter(split="test").order_by("index"))
    assert [(c.case_id, bool(c.label_path)) for c in test] == [("case_100", True), ("case_101", False)]
    assert [c.case_id for c in dataset.cases.filter(split="train")] == ["case_000", "case_001"]
    # The stored folder lists them under "test" as {"image", "label"} (label only when present),
    # and the engine keeps them apart from the cases it trains and validates on.
    stored = json.loads((dataset.msd_dir / "dataset.json").read_text())
    assert stored["test"] == [
        {"image": "./imagesTs/case_0003.nii.gz", "label": "./labelsTs/case_0003.nii.gz"},
        {"image": "./imagesTs/case_0004.nii.gz"},
    ]
    spec = load_dataset(dataset.msd_dir)
    assert [c.case_id for c in spec.cases] == ["case_0001", "case_0002"]
    assert [(c.case_id, c.label is not None) for c in spec.test_cases] == [("case_0003", True), ("case_0004", False)]
    assert dataset.fingerprint["n_cases"] == 2
    stored_label = nib.load(str(dataset.msd_dir / "labelsTs" / "case_0003.nii.gz"))
    assert stored_label.get_data_dtype() == np.uint8
    assert np.array_equal(np.asanyarray(stored_label.dataobj), label)
    # The dataset page lists the note and the test split.
    client.force_login(user)
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert 'id="dataset-notes"' in page and "absent.nii.gz" in page
    assert 'id="dataset-test-cases"' in page and 'data-case-id="case_100"' in page and "no label map" in page


def test_every_missing_training_file_is_named(make_user, make_project, tmp_path):
    user = make_user()
    folder = _msd(tmp_path / "Task", n_cases=3)
    (folder / "imagesTr" / "case_000.nii.gz").unlink()
    (folder / "labelsTr" / "case_002.nii.gz").unlink()
    dataset = _import_folder(user, make_project(user), folder)
    assert dataset.status == S.INVALID
    assert [(p["file"], "was not found" in p["problem"]) for p in dataset.problems] == [
        ("case_000.nii.gz", True), ("case_002.nii.gz", True)]


def test_deep_dataset_json_and_60000_classes_are_clear_messages(make_user, make_project, tmp_path):
    user = make_user()
    project = make_project(user)
    folder = _msd(tmp_path / "Deep")
    description = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps(description)[:-1] + ', "x": ' + DEEP + "}")
    dataset = _import_folder(user, project, folder)
    assert dataset.status == S.INVALID
    assert "nested deeper than 64 levels" in dataset.problems[0]["problem"], dataset.problems
    many = {"0": "background", **{str(i): f"class {i}" for i in range(1, 60_000)}}
    dataset = _import_folder(user, project, _msd(tmp_path / "Many", labels=many))
    assert dataset.status == S.INVALID
    assert "60,000 classes are declared, more than the limit of 255" in dataset.problems[0]["problem"]
    with pytest.raises(Exception, match="above 255"):
        services.dataset_upload(project=project, actor=user, files=[SimpleUploadedFile("a.nii.gz", b"x")],
                                labels="1: a, 300: b")


def test_single_junk_file_is_diagnosed_as_itself_not_as_a_pairing_problem(make_user, make_project, tmp_path,
                                                                          django_capture_on_commit_callbacks):
    user = make_user()
    junk = corpus.text_as_nifti(tmp_path / "scan.nii.gz")
    with django_capture_on_commit_callbacks(execute=False):
        dataset = services.dataset_upload(project=make_project(user), actor=user, files=[uploaded_file(junk)], labels="1: a")
    dataset = services.dataset_import(dataset_id=dataset.pk)
    assert dataset.status == S.INVALID
    assert len(dataset.problems) == 1, dataset.problems
    assert dataset.problems[0]["file"] == "scan.nii.gz"
    assert "not gzip-compressed" in dataset.problems[0]["problem"] and "not a NIfTI image" in dataset.problems[0]["problem"]
    assert "no label map" not in str(dataset.problems)


def test_import_refuses_bombs_extensions_and_flat_voxels_per_file(make_user, make_project, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    user = make_user()
    image, label = corpus.case_arrays(1)
    files = [
        bomb(tmp_path / "a.nii.gz", members=64), corpus.write_nifti(tmp_path / "a_seg.nii.gz", label),
        gigabyte_extension(tmp_path / "b.nii.gz"), corpus.write_nifti(tmp_path / "b_seg.nii.gz", label),
        zero_pixdim(tmp_path / "c.nii.gz", axis=1, value=-1.5), corpus.write_nifti(tmp_path / "c_seg.nii.gz", label),
    ]
    with django_capture_on_commit_callbacks(execute=False):
        dataset = services.dataset_upload(project=make_project(user), actor=user, files=[uploaded_file(p) for p in files],
                                          labels="1: organ, 2: lesion")
    dataset = services.dataset_import(dataset_id=dataset.pk)
    assert dataset.status == S.INVALID
    by_file = {p["file"]: p["problem"] for p in dataset.problems}
    assert "more data after the voxel data" in by_file["a.nii.gz"]
    assert "more than the limit of 16,777,216" in by_file["b.nii.gz"]
    assert "pixdim[1] is -1.5" in by_file["c.nii.gz"]
    assert set(by_file) == {"a.nii.gz", "b.nii.gz", "c.nii.gz"}  # no pairing advice for broken files


# --- item 7: no server path in any message ------------------------------------------------------
def test_no_server_path_in_import_or_prediction_messages(client, model_world, make_user, tmp_path, media_root,
                                                         django_capture_on_commit_callbacks):
    # A .nii that is not NIfTI: nibabel's own message names the file by its full path.
    noise = tmp_path / "noise.nii"
    noise.write_bytes(np.random.default_rng(0).bytes(2000))
    short = tmp_path / "short.nii"
    short.write_bytes(b"\x5c\x01\x00\x00" + b"\x00" * 100)
    user = model_world["owner"]
    with django_capture_on_commit_callbacks(execute=False):
        dataset = services.dataset_upload(project=model_world["project"], actor=user,
                                          files=[uploaded_file(noise), uploaded_file(short)], labels="1: a")
    dataset = services.dataset_import(dataset_id=dataset.pk)
    client.force_login(user)
    texts = [json.dumps(dataset.problems)]
    for path in (noise, short):
        response = client.post(f"/api/models/{model_world['model'].pk}/infer", {"files": [uploaded_file(path)]})
        assert response.status_code == 400
        texts.append(response.content.decode())
    page = client.get(f"/datasets/{dataset.pk}/").content.decode()
    texts.append(page)
    for text in texts:
        for server_path in (str(media_root), "/tmp/", str(tmp_path), "/work/"):
            assert server_path not in text, (server_path, text[:2000])
    assert "noise.nii" in texts[0] and "not a NIfTI image" in texts[0]


def _zeros_volume(path: Path, shape, dtype) -> Path:
    """A valid .nii.gz of zeros of this shape and type, built from 16 MiB zero members."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_sform(np.diag([0.8, 0.8, 0.8, 1.0]), code=1)
    header.set_qform(np.diag([0.8, 0.8, 0.8, 1.0]), code=1)
    header["vox_offset"] = 352
    n_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    assert n_bytes % (16 << 20) == 0
    path.write_bytes(gzip.compress(header.binaryblock + bytes(4)) + ZEROS_16M * (n_bytes >> 24))
    return path


def test_a_case_like_f5_over_the_memory_cap_is_refused_with_the_numbers(
    make_user, make_project, tmp_path, django_capture_on_commit_callbacks
):
    """Issue 14 F5: a ~10 MB upload (512 x 512 x 1024, float32 image, float64 label) peaked a
    worker at 8.2 GB. Labels are now read and looked up slab by slab (3 bytes per voxel), so
    that very case is estimated at 5.8 GB, under the 6 GB cap; with a float64 image it is 6.8 GB."""
    user = make_user()
    image = _zeros_volume(tmp_path / "big.nii.gz", (512, 512, 1024), np.float64)
    label = _zeros_volume(tmp_path / "big_seg.nii.gz", (512, 512, 1024), np.float64)
    assert image.stat().st_size + label.stat().st_size < 12 << 20
    with django_capture_on_commit_callbacks(execute=False):
        dataset = services.dataset_upload(project=make_project(user), actor=user, files=[uploaded_file(image), uploaded_file(label)],
                                          labels="1: organ")
    dataset = services.dataset_import(dataset_id=dataset.pk)
    assert dataset.status == S.INVALID
    assert [p["file"] for p in dataset.problems] == ["big.nii.gz"], dataset.problems
    assert ("preprocessing this case (image and label map) would take about 6.8 GB of memory, "
            "more than the limit of 6.0 GB") in dataset.problems[0]["problem"], dataset.problems
