"""Dataset upload and import end to end: REST API -> Redis -> real Celery worker -> database.

The bad-input corpus is generated here; each item must be refused with its clear message and
leave nothing behind (no case rows, no files).
"""
from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import webcorpus as corpus
from PIL import Image

from webapp.datasets.models import Case, Dataset

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LABELS = "1: organ, 2: lesion"


@pytest.fixture
def owner_client(client, make_user, make_project):
    user = make_user("owner")
    project = make_project(user, name="Imports")
    client.force_login(user)
    return client, project


def upload(client, project, paths: list[Path], labels: str = LABELS, name: str = "", expect: int = 202):
    handles = [open(p, "rb") for p in paths]
    try:
        response = client.post(
            f"/api/projects/{project.pk}/datasets/",
            {"files": handles, "labels": labels, "name": name, "modality": "CT"},
        )
    finally:
        for h in handles:
            h.close()
    assert response.status_code == expect, response.content
    return response


def wait_final(client, dataset_id: int, wait_for, timeout: float = 90) -> dict:
    def final():
        body = client.get(f"/api/datasets/{dataset_id}/").json()
        return body if body["status"] in ("ready", "invalid") else None

    return wait_for(final, timeout=timeout, interval=0.25)


def assert_nothing_stored(dataset_id: int, media_root: Path):
    dataset = Dataset.objects.get(pk=dataset_id)
    assert dataset.status == "invalid"
    assert Case.objects.filter(dataset_id=dataset_id).count() == 0
    assert not dataset.root.exists(), sorted(str(p) for p in dataset.root.rglob("*"))
    assert str(dataset.root).startswith(str(media_root))


# --- good uploads ------------------------------------------------------------------------------
def test_nifti_files_upload_becomes_ready_with_previews_fingerprint_and_scrubbed_headers(
    owner_client, celery_worker, tmp_path, media_root, wait_for
):
    client, project = owner_client
    files = [*corpus.good_pair(tmp_path, "liver1", seed=1), *corpus.good_pair(tmp_path, "liver2", seed=2, suffix="_mask")]
    created = upload(client, project, files, name="Two livers").json()
    assert created["status"] == "uploaded"
    body = wait_final(client, created["id"], wait_for)
    assert body["status"] == "ready", body["problems"]
    assert body["num_cases"] == 2
    assert body["labels"] == {"0": "background", "1": "organ", "2": "lesion"}
    fp = body["fingerprint"]
    assert fp["n_cases"] == 2 and len(fp["spacings"]) == 2 and fp["intensity"][0]["n_voxels"] > 0
    assert set(fp["class_voxel_fractions"]) == {"0", "1", "2"}

    dataset = Dataset.objects.get(pk=created["id"])
    cases = list(dataset.cases.order_by("index"))
    assert [c.case_id for c in cases] == ["liver1", "liver2"]
    for case, seed in zip(cases, (1, 2)):
        # generated names, inside the dataset's MSD folder
        assert case.image_file.name == f"case_{case.index:04d}.nii.gz"
        assert case.image_file.parent.name == "imagesTr" and case.label_file.parent.name == "labelsTr"
        # preview: a real PNG, served through the access-checked route
        response = client.get(f"/datasets/{dataset.pk}/cases/{case.pk}/preview.png")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        png = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert png.format == "PNG" and png.width > 100
        # headers scrubbed, data untouched
        for path, original in ((case.image_file, corpus.case_arrays(seed)[0]), (case.label_file, corpus.case_arrays(seed)[1])):
            stored = nib.load(str(path))
            hdr = stored.header
            for field in ("descrip", "aux_file", "db_name", "intent_name"):
                assert hdr[field].tobytes().strip(b"\x00") == b"", (path, field)
            assert len(hdr.extensions) == 0
            assert corpus.PATIENT_TEXT not in open(path, "rb").read()
            np.testing.assert_array_equal(np.asarray(stored.dataobj), original)
            np.testing.assert_allclose(stored.affine, corpus.affine())
    # the raw uploads (unscrubbed) are gone; only the MSD folder and previews stay
    assert not dataset.upload_dir.exists() and not dataset.work_dir.exists()
    assert sorted(p.name for p in dataset.root.iterdir()) == ["msd", "previews"]
    from nasengine.data.dataset import load_dataset

    assert len(load_dataset(dataset.msd_dir).cases) == 2

    page = client.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="dataset-status"' in html and 'data-status="ready"' in html
    assert html.count('class="preview"') == 2 and 'id="dataset-fingerprint"' in html


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_msd_archive_upload_becomes_ready(kind, owner_client, celery_worker, tmp_path, wait_for):
    client, project = owner_client
    folder = corpus.msd_folder(tmp_path / "msd", n_cases=2)
    out = tmp_path / f"Task01_Test.{kind}"
    archive = corpus.zip_folder(folder, out) if kind == "zip" else corpus.tar_folder(folder, out)
    created = upload(client, project, [archive], labels="").json()
    assert created["source"] == "archive" and created["name"] == "Task01_Test"
    body = wait_final(client, created["id"], wait_for)
    assert body["status"] == "ready", body["problems"]
    assert body["num_cases"] == 2 and body["labels"]["2"] == "lesion" and body["modality"] == "CT"
    cases = client.get(body["cases_url"]).json()
    assert [c["case_id"] for c in cases] == ["case_000", "case_001"]
    preview = client.get(cases[0]["preview_url"])
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"


def test_delete_removes_rows_and_files(owner_client, celery_worker, tmp_path, wait_for):
    client, project = owner_client
    created = upload(client, project, list(corpus.good_pair(tmp_path, "a"))).json()
    assert wait_final(client, created["id"], wait_for)["status"] == "ready"
    dataset = Dataset.objects.get(pk=created["id"])
    root = dataset.root
    assert any(root.rglob("*.nii.gz")) and any(root.rglob("*.png"))
    response = client.post(f"/datasets/{dataset.pk}/delete/")
    assert response.status_code == 302
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert Case.objects.filter(dataset_id=dataset.pk).count() == 0
    assert not root.exists()


# --- the bad-input corpus ----------------------------------------------------------------------
def _pair_with_label(tmp_path: Path, label: np.ndarray, label_affine=None, dtype=None) -> list[Path]:
    image, _ = corpus.case_arrays(0)
    return [
        corpus.write_nifti(tmp_path / "c1.nii.gz", image),
        corpus.write_nifti(tmp_path / "c1_seg.nii.gz", label.astype(dtype) if dtype else label, label_affine),
    ]


def bad_truncated(tmp_path):
    _, label = corpus.case_arrays(0)
    return [corpus.truncated_gz(tmp_path / "c1.nii.gz"), corpus.write_nifti(tmp_path / "c1_seg.nii.gz", label)], "c1.nii.gz", "truncated or corrupt"


def bad_text_file(tmp_path):
    _, label = corpus.case_arrays(0)
    return [corpus.text_as_nifti(tmp_path / "c1.nii.gz"), corpus.write_nifti(tmp_path / "c1_seg.nii.gz", label)], "c1.nii.gz", "not gzip-compressed"


def bad_shape(tmp_path):
    return _pair_with_label(tmp_path, np.zeros((16, 14, 9), np.uint8)), "c1_seg.nii.gz", "does not match the image"


def bad_affine(tmp_path):
    _, label = corpus.case_arrays(0)
    return _pair_with_label(tmp_path, label, corpus.affine(origin=(-10.0, 25.0, 5.0))), "c1_seg.nii.gz", "(affine) differs"


def bad_undeclared(tmp_path):
    _, label = corpus.case_arrays(0)
    label[0, 0, 0] = 7
    return _pair_with_label(tmp_path, label), "c1_seg.nii.gz", "label values {7} are not declared"


def bad_nan_label(tmp_path):
    _, label = corpus.case_arrays(0)
    label = label.astype(np.float32)
    label[1, 1, 1] = np.nan
    return _pair_with_label(tmp_path, label), "c1_seg.nii.gz", "NaN or infinite"


def bad_huge_header(tmp_path):
    _, label = corpus.case_arrays(0)
    return [corpus.huge_header(tmp_path / "c1.nii.gz"), corpus.write_nifti(tmp_path / "c1_seg.nii.gz", label)], "c1.nii.gz", "1,000,000,000,000,000 voxels"


def bad_dotdot(tmp_path):
    return [corpus.zip_with_member(tmp_path / "evil.zip", "Task/../../escaped.nii.gz")], "Task/../../escaped.nii.gz", "'..'"


def bad_absolute(tmp_path):
    return [corpus.tar_with_member(tmp_path / "evil.tar.gz", "/etc/voxelsearch-owned.nii.gz")], "voxelsearch-owned.nii.gz", "absolute path"


def bad_symlink(tmp_path):
    return [corpus.tar_with_member(tmp_path / "link.tar.gz", "Task/imagesTr/x.nii.gz", symlink_to="/etc/passwd")], "x.nii.gz", "link"


def bad_zip_bomb(tmp_path):
    return [corpus.zip_bomb(tmp_path / "bomb.zip")], "bomb.nii", "decompression bomb"


def bad_unpaired(tmp_path):
    image, _ = corpus.case_arrays(0)
    return [corpus.write_nifti(tmp_path / "lonely.nii.gz", image)], "lonely.nii.gz", "no label map found"


BAD = [
    bad_truncated, bad_text_file, bad_shape, bad_affine, bad_undeclared, bad_nan_label, bad_huge_header,
    bad_dotdot, bad_absolute, bad_symlink, bad_zip_bomb, bad_unpaired,
]


@pytest.mark.parametrize("make_bad", BAD, ids=[f.__name__[4:] for f in BAD])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(
    make_bad, owner_client, celery_worker, tmp_path, media_root, wait_for
):
    client, project = owner_client
    files, bad_file, message = make_bad(tmp_path)
    created = upload(client, project, files).json()
    body = wait_final(client, created["id"], wait_for)
    assert body["status"] == "invalid"
    problems = body["problems"]
    assert problems, body
    assert any(message in p["problem"] and Path(bad_file).name == Path(p["file"]).name for p in problems), problems
    assert_nothing_stored(created["id"], media_root)
    page = client.get(f"/datasets/{created['id']}/").content.decode()
    assert 'id="dataset-problems"' in page and Path(bad_file).name in page
    # Only the upload's good half is never kept either: no NIfTI anywhere under this dataset.
    assert not list((media_root / "datasets").glob(f"{Dataset.objects.get(pk=created['id']).storage_key}/**/*"))
