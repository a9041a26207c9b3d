"""Predictions end to end with a real Celery worker (queue gpu) and the real engine.

Upload through the page and through the MONAI-Label-style API (token auth), pick dataset cases;
the worker segments each volume; the downloaded label NIfTI has exactly the input's shape and
affine; the volumes in mL match voxel counts computed here.
"""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from django.test import Client
from predictiontesting import engine_bundle, input_volume, make_engine_model
from webtesting import uploaded_file

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def _nifti(content: bytes, tmp_path: Path, name: str) -> nib.Nifti1Image:
    path = tmp_path / name
    path.write_bytes(content)
    image = nib.load(str(path))
    image.get_fdata()  # fully readable
    return image


def _expected_volumes(label: nib.Nifti1Image, zooms_from: nib.Nifti1Image) -> dict[int, tuple[int, float]]:
    counts = np.bincount(np.asarray(label.dataobj).ravel().astype(np.int64), minlength=3)
    voxel_ml = float(np.prod([float(z) for z in zooms_from.header.get_zooms()[:3]])) / 1000.0
    return {v: (int(counts[v]), int(counts[v]) * voxel_ml) for v in (1, 2)}


def _wait_final(client, pk, wait_for, timeout=180):
    def final():
        body = client.get(f"/api/predictions/{pk}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_for(final, timeout=timeout, interval=0.5)


def test_upload_in_the_page_is_segmented_in_the_inputs_geometry(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    owner = make_user("doctor")
    project = make_project(owner, name="Ward")
    model = make_engine_model(project, bundle[0])
    source_path = input_volume(bundle[1], tmp_path / "knee scan.nii.gz")
    client = Client()
    client.force_login(owner)
    response = client.post(f"/models/{model.pk}/predict/", {"files": [uploaded_file(source_path)]})
    assert response.status_code == 302, response.content.decode()[-2000:]
    pk = int(response["Location"].rstrip("/").split("/")[-1])
    body = _wait_final(client, pk, wait_for)
    assert body["status"] == "succeeded", (body, celery_worker.output()[-3000:])

    response = client.get(f"/predictions/{pk}/label.nii.gz")
    assert response.status_code == 200
    assert 'filename="knee scan_label.nii.gz"' in response["Content-Disposition"]
    label = _nifti(b"".join(response.streaming_content), tmp_path, "label.nii.gz")
    source = nib.load(str(source_path))
    assert label.shape == source.shape == (30, 28, 22)
    assert np.allclose(label.affine, source.affine, atol=1e-5), (label.affine, source.affine)
    assert label.get_data_dtype() == np.uint8
    values = set(np.unique(np.asarray(label.dataobj)).tolist())
    assert values <= {0, 1, 2} and values & {1, 2}, values
    expected = _expected_volumes(label, source)
    got = {row["value"]: (row["voxels"], row["ml"]) for row in body["volumes"]}
    assert {v: n for v, (n, _) in got.items()} == {v: n for v, (n, _) in expected.items()}
    for v in (1, 2):
        assert got[v][1] == pytest.approx(expected[v][1], rel=1e-9)
    assert [row["name"] for row in body["volumes"]] == ["organ", "lesion"]
    assert body["voxel_volume_ml"] == pytest.approx(1.1 * 0.9 * 1.6 / 1000, rel=1e-5)
    assert body["colours"][0]["value"] == 1 and body["colours"][0]["hex"].startswith("#")

    # the result page: viewer config, legend, volumes in mL, downloads
    page = client.get(f"/predictions/{pk}/").content.decode()
    assert 'data-status="succeeded"' in page and 'id="download-label"' in page and 'id="volume-table"' in page
    from webapp.predictions.views import volume_text

    assert f">{volume_text(got[1][1])}<" in page and "organ" in page and "lesion" in page
    assert "GPU worker" not in page
    assert 'id="viewer-config"' in page
    response = client.get(f"/predictions/{pk}/input.nii.gz")
    stored = _nifti(b"".join(response.streaming_content), tmp_path, "input.nii.gz")
    assert np.array_equal(stored.get_fdata(), source.get_fdata())
    assert stored.header["descrip"].tobytes().strip(b"\0") == b""


def test_infer_api_round_trip_with_a_token(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    owner = make_user("scripter", password="token-pw-1")
    project = make_project(owner, name="Scripts")
    model = make_engine_model(project, bundle[0])
    token = Client().post("/api/auth/token/", {"username": "scripter", "password": "token-pw-1"}).json()["token"]
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    paths = [input_volume(bundle[1], tmp_path / "a.nii.gz"),
             input_volume(bundle[1], tmp_path / "b.nii.gz", crop=(32, 20, 24), affine=np.diag([0.8, 1.2, 2.0, 1.0]))]
    response = api.post(f"/api/models/{model.pk}/infer", {"files": [uploaded_file(p) for p in paths]})
    assert response.status_code == 202, response.content
    jobs = response.json()["predictions"]
    assert [j["input_name"] for j in jobs] == ["a.nii.gz", "b.nii.gz"] and all(j["status"] == "queued" for j in jobs)
    for job, path in zip(jobs, paths):
        body = _wait_final(api, job["id"], wait_for)
        assert body["status"] == "succeeded", body
        response = api.get(body["result_url"])
        assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
        label = _nifti(b"".join(response.streaming_content), tmp_path, f"label-{job['id']}.nii.gz")
        source = nib.load(str(path))
        assert label.shape == source.shape and np.allclose(label.affine, source.affine, atol=1e-5)
        expected = _expected_volumes(label, source)
        assert {row["value"]: row["voxels"] for row in body["volumes"]} == {v: n for v, (n, _) in expected.items()}
    listed = api.get(f"/api/models/{model.pk}/predictions/").json()
    assert sorted(p["id"] for p in listed) == sorted(j["id"] for j in jobs)


def test_cases_of_a_dataset_are_picked_instead_of_uploaded(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    from webapp.datasets.services import dataset_import_folder

    owner = make_user("picker")
    project = make_project(owner, name="Picks")
    dataset = dataset_import_folder(project=project, actor=owner, folder=bundle[1], name="Demo", queue=False)
    assert dataset.status == "ready", dataset.problems
    model = make_engine_model(project, bundle[0], dataset=dataset)
    cases = list(dataset.cases.order_by("index")[:2])
    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{model.pk}/predict/").content.decode()
    assert all(f'value="{c.pk}"' in page for c in cases)
    response = client.post(f"/models/{model.pk}/predict/", {"cases": [c.pk for c in cases]})
    assert response.status_code == 302
    from webapp.predictions.models import Prediction

    predictions = list(Prediction.objects.filter(model=model).order_by("pk"))
    assert [p.source_case_id for p in predictions] == [c.pk for c in cases]
    assert predictions[0].input_name == f"Demo / {cases[0].case_id}"
    for prediction, case in zip(predictions, cases):
        body = _wait_final(client, prediction.pk, wait_for)
        assert body["status"] == "succeeded", body
        label = nib.load(str(Prediction.objects.get(pk=prediction.pk).output_file))
        image = nib.load(str(case.image_file))
        assert label.shape == image.shape and np.allclose(label.affine, image.affine, atol=1e-5)
