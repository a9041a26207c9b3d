"""Predictions without a worker: bad inputs are refused with a clear message and nothing is
stored; who may predict; the state machine; volumes in mL; a failing run; deletion.

The model is real (a bundle the engine made, see tests/predictiontesting.py); the prediction job
itself is run in this process where a test needs it (the worker tests are in
test_predictions_worker.py).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import webcorpus
from predictiontesting import engine_bundle, input_volume, make_engine_model, make_prediction, write_volume
from webtesting import uploaded_file

from webapp.predictions.models import IllegalTransition, Prediction

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


@pytest.fixture
def world(make_user, make_project, bundle):
    owner, editor, viewer, outsider = (make_user(n) for n in ("owner", "editor", "viewer", "outsider"))
    project = make_project(owner, name="Clinic", editors=[editor], viewers=[viewer])
    make_project(outsider, name="Elsewhere")
    model = make_engine_model(project, bundle[0])
    return {"owner": owner, "editor": editor, "viewer": viewer, "outsider": outsider, "project": project,
            "model": model, "demo": bundle[1]}


def _stored_files(media_root: Path) -> list[Path]:
    root = media_root / "predictions"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, words the message must contain)."""
    two_channels = np.zeros((12, 12, 10, 2), np.float32)
    return {
        "truncated": (webcorpus.truncated_gz(tmp_path / "cut.nii.gz"), "truncated or corrupt"),
        "two-channels": (write_volume(tmp_path / "two.nii.gz", two_channels, np.eye(4)), "2 channel(s) but the model takes 1"),
        "text-named-nifti": (webcorpus.text_as_nifti(tmp_path / "note.nii.gz"), "not gzip-compressed"),
        "text-file": (webcorpus.text_as_nifti(tmp_path / "note.txt"), "only NIfTI volumes"),
        "huge-header": (webcorpus.huge_header(tmp_path / "huge.nii.gz"), "more than the limit"),
    }


@pytest.mark.parametrize("case", ["truncated", "two-channels", "text-named-nifti", "text-file", "huge-header"])
def test_bad_uploads_are_refused_with_a_clear_message_and_nothing_is_stored(client, world, tmp_path, media_root, case):
    path, words = _bad_inputs(tmp_path)[case]
    before = _stored_files(media_root)
    client.force_login(world["editor"])
    # the page
    response = client.post(f"/models/{world['model'].pk}/predict/", {"files": [uploaded_file(path)]})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was queued" in page and path.name in page and words in page, page[-3000:]
    # the API
    response = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(path)]})
    assert response.status_code == 400
    assert path.name in str(response.json()) and words in str(response.json())
    assert Prediction.objects.count() == 0
    assert _stored_files(media_root) == before


def test_a_batch_with_one_bad_file_stores_nothing(client, world, tmp_path, media_root):
    good = input_volume(world["demo"], tmp_path / "good.nii.gz")
    bad = webcorpus.truncated_gz(tmp_path / "bad.nii.gz")
    before = _stored_files(media_root)
    client.force_login(world["owner"])
    response = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(good), uploaded_file(bad)]})
    assert response.status_code == 400 and "bad.nii.gz" in str(response.json())
    assert Prediction.objects.count() == 0
    assert _stored_files(media_root) == before
    response = client.post(f"/api/models/{world['model'].pk}/infer", {})
    assert response.status_code == 400 and "Choose one or more NIfTI volumes" in str(response.json())


def test_an_upload_is_stored_scrubbed_and_queued(client, world, tmp_path, media_root, django_capture_on_commit_callbacks):
    path = input_volume(world["demo"], tmp_path / "patient scan.nii.gz")
    client.force_login(world["editor"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(path)]})
    assert response.status_code == 202, response.content
    body = response.json()["predictions"]
    assert len(body) == 1 and body[0]["status"] == "queued" and body[0]["input_name"] == "patient scan.nii.gz"
    assert len(callbacks) == 1  # the job is sent once the rows are committed
    prediction = Prediction.objects.get(pk=body[0]["id"])
    assert prediction.created_by == world["editor"] and prediction.project == world["project"]
    stored = nib.load(str(prediction.input_file))
    assert stored.header["descrip"].tobytes().strip(b"\0") == b""
    assert stored.header["aux_file"].tobytes().strip(b"\0") == b""
    original = nib.load(str(path))
    assert np.array_equal(np.asarray(stored.dataobj), np.asarray(original.dataobj))
    assert np.allclose(stored.affine, original.affine)
    assert [p.name for p in prediction.root.iterdir()] == ["input.nii.gz"]  # the raw upload is gone
    assert prediction.shape == [30, 28, 22]


def test_viewers_read_but_cannot_predict_and_outsiders_see_nothing(client, world, tmp_path):
    path = input_volume(world["demo"], tmp_path / "scan.nii.gz")
    model = world["model"]
    prediction = make_prediction(model)
    client.force_login(world["viewer"])
    assert client.post(f"/api/models/{model.pk}/infer", {"files": [uploaded_file(path)]}).status_code == 403
    assert client.post(f"/models/{model.pk}/predict/", {"files": [uploaded_file(path)]}).status_code == 403
    assert client.delete(f"/api/predictions/{prediction.pk}/").status_code == 403
    assert client.get(f"/api/predictions/{prediction.pk}/").json()["status"] == "succeeded"
    assert client.get(f"/api/predictions/{prediction.pk}/result").status_code == 200
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'id="viewer-canvas"' in page or 'id="viewer-missing"' in page
    assert 'id="delete-prediction"' not in page
    client.force_login(world["outsider"])
    for url in (f"/api/predictions/{prediction.pk}/", f"/api/predictions/{prediction.pk}/result",
                f"/predictions/{prediction.pk}/", f"/predictions/{prediction.pk}/label.nii.gz",
                f"/api/models/{model.pk}/predictions/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/api/models/{model.pk}/infer", {"files": [uploaded_file(path)]}).status_code == 404
    assert client.delete(f"/api/predictions/{prediction.pk}/").status_code == 404
    assert Prediction.objects.filter(pk=prediction.pk).exists() and prediction.output_file.is_file()
    assert Prediction.objects.count() == 1


def test_cases_must_belong_to_the_models_project(client, world, make_project):
    from webapp.datasets.models import Case, Dataset

    other = make_project(world["outsider"], name="Other")
    dataset = Dataset.objects.create(project=other, name="Theirs", source="files", status=Dataset.Status.READY)
    case = Case.objects.create(dataset=dataset, case_id="x", index=1, image_path="x", label_path="y")
    client.force_login(world["owner"])
    response = client.post(f"/api/models/{world['model'].pk}/infer", {"cases": [case.pk]})
    assert response.status_code == 404
    assert Prediction.objects.count() == 0


def test_result_answers_409_until_the_prediction_succeeded(client, world):
    queued = make_prediction(world["model"], status="queued")
    client.force_login(world["owner"])
    response = client.get(f"/api/predictions/{queued.pk}/result")
    assert response.status_code == 409 and "not succeeded" in response.json()["detail"]
    assert client.get(f"/predictions/{queued.pk}/label.nii.gz").status_code == 404
    page = client.get(f"/predictions/{queued.pk}/").content.decode()
    assert 'id="prediction-pending"' in page and 'data-status="queued"' in page and "viewer-canvas" not in page


def test_status_changes_only_along_the_state_machine(world):
    prediction = make_prediction(world["model"], status="queued")
    with pytest.raises(IllegalTransition):
        prediction.transition(Prediction.Status.SUCCEEDED)
    prediction.transition(Prediction.Status.RUNNING)
    assert prediction.started_at is not None and prediction.finished_at is None
    prediction.transition(Prediction.Status.FAILED, error="x")
    assert prediction.finished_at is not None and prediction.is_final
    for status in Prediction.Status.values:
        with pytest.raises(IllegalTransition):
            prediction.transition(status)


def test_the_job_fails_with_the_reason_for_a_volume_with_nan(world, tmp_path, client, django_capture_on_commit_callbacks):
    """NaN passes the header checks in the request; the worker's data check refuses it."""
    from webapp.predictions.services import prediction_run

    data = np.asarray(nib.load(str(input_volume(world["demo"], tmp_path / "v.nii.gz"))).dataobj, np.float32).copy()
    data[3, 3, 3] = np.nan
    path = write_volume(tmp_path / "nan.nii.gz", data, np.eye(4))
    client.force_login(world["owner"])
    response = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(path)]})
    assert response.status_code == 202
    prediction = prediction_run(prediction_id=response.json()["predictions"][0]["id"])
    assert prediction.status == "failed" and "NaN" in prediction.error and prediction.error.startswith("nan.nii.gz")
    assert prediction.output_path == "" and not (prediction.root / "label.nii.gz").exists()
    body = client.get(f"/api/predictions/{prediction.pk}/").json()
    assert body["status"] == "failed" and "NaN" in body["error"]
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'id="prediction-error"' in page and "NaN" in page
    # a final prediction is left alone by a second delivery of its job
    assert prediction_run(prediction_id=prediction.pk).status == "failed"


def test_run_in_process_writes_the_label_map_and_the_volumes(world, tmp_path, client):
    """The job's service, run here: output in the input's geometry, mL from voxel counts."""
    from webapp.predictions.services import prediction_run

    path = input_volume(world["demo"], tmp_path / "scan.nii.gz")
    client.force_login(world["owner"])
    pk = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(path)]}).json()["predictions"][0]["id"]
    prediction = prediction_run(prediction_id=pk)
    assert prediction.status == "succeeded", prediction.error
    assert prediction.attempts == 1 and prediction.started_at and prediction.finished_at
    label = nib.load(str(prediction.output_file))
    source = nib.load(str(path))
    assert label.shape == source.shape and np.allclose(label.affine, source.affine, atol=1e-5)
    counts = np.bincount(np.asarray(label.dataobj).ravel(), minlength=3)
    voxel_ml = float(np.prod([float(z) for z in source.header.get_zooms()[:3]])) / 1000
    assert [(v["value"], v["name"], v["voxels"]) for v in prediction.volumes] == [(1, "organ", int(counts[1])), (2, "lesion", int(counts[2]))]
    for row in prediction.volumes:
        assert row["ml"] == pytest.approx(row["voxels"] * voxel_ml, rel=1e-6)


def test_delete_removes_the_files(client, world, django_capture_on_commit_callbacks):
    prediction = make_prediction(world["model"])
    root = prediction.root
    assert root.is_dir()
    client.force_login(world["editor"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/predictions/{prediction.pk}/")
    assert response.status_code == 204
    assert not Prediction.objects.filter(pk=prediction.pk).exists() and not root.exists()
    running = make_prediction(world["model"], status="running")
    response = client.post(f"/predictions/{running.pk}/delete/")
    assert response.status_code == 302 and Prediction.objects.filter(pk=running.pk).exists()


def test_a_plain_nii_upload_is_stored_compressed(client, world, tmp_path):
    """An uncompressed .nii upload works too and is stored compressed."""
    data = np.asarray(nib.load(str(input_volume(world["demo"], tmp_path / "v.nii.gz"))).dataobj, np.float32)
    path = write_volume(tmp_path / "plain.nii", data, np.diag([1.0, 1.0, 2.0, 1.0]))
    client.force_login(world["owner"])
    response = client.post(f"/api/models/{world['model'].pk}/infer", {"files": [uploaded_file(path)]})
    assert response.status_code == 202, response.content
    prediction = Prediction.objects.get()
    with gzip.open(prediction.input_file) as f:
        assert len(f.read(348)) == 348
