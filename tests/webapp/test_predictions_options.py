"""Inference settings of a prediction (issue 12, items 3 and 5) with a real Celery worker and the
real engine: overlap, mirroring test-time augmentation and largest-component post-processing are
taken by the page and the API, checked with clear messages (400), stored, shown in plain words,
and passed by the worker to ``nasengine.api.predict``; a model with a finished k-fold ensemble
can be predicted with that ensemble folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from django.conf import settings
from django.test import Client
from predictiontesting import engine_bundle, input_volume, make_engine_model, make_prediction
from webtesting import uploaded_file

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def _wait_final(client, pk, wait_for, timeout=180):
    def final():
        body = client.get(f"/api/predictions/{pk}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_for(final, timeout=timeout, interval=0.5)


def _label(client, pk, tmp_path, name) -> np.ndarray:
    response = client.get(f"/api/predictions/{pk}/result")
    assert response.status_code == 200
    path = tmp_path / name
    path.write_bytes(b"".join(response.streaming_content))
    return np.asarray(nib.load(str(path)).dataobj)


def _direct(model_dir, source: Path, out: Path, **options) -> np.ndarray:
    from nasengine import api

    api.predict(model_dir, source, out, device="cpu", **options)
    return np.asarray(nib.load(str(out)).dataobj)


def _token_client(user) -> Client:
    """An API client with the user's token (the user was made with password ``pw-options-1``)."""
    token = Client().post("/api/auth/token/", {"username": user.username, "password": "pw-options-1"}).json()["token"]
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


@pytest.mark.parametrize("field,value,words", [
    ("overlap", "1", "overlap must be from 0 to below 1"),
    ("overlap", "-0.1", "overlap must be from 0 to below 1"),
    ("overlap", "nan", "overlap must be from 0 to below 1"),
    ("overlap", "half", "overlap must be a number"),
    ("mirror", "maybe", "Mirror must be true or false"),
    ("postprocess", "biggest", "Post-processing must be one of auto, none, lcc"),
    ("use_ensemble", "true", "no finished k-fold ensemble"),
])
def test_bad_settings_are_refused_with_a_clear_message(field, value, words, make_user, make_project, bundle, tmp_path):
    from webapp.predictions.models import Prediction

    owner = make_user("careful", password="pw-options-1")
    model = make_engine_model(make_project(owner, name="Checks"), bundle[0])
    source = input_volume(bundle[1], tmp_path / "scan.nii.gz")
    api_client = _token_client(owner)
    response = api_client.post(f"/api/models/{model.pk}/infer", {"files": [uploaded_file(source)], field: value})
    assert response.status_code == 400, response.content
    assert words in response.content.decode()
    page_client = Client()
    page_client.force_login(owner)
    response = page_client.post(f"/models/{model.pk}/predict/", {"files": [uploaded_file(source)], field: value})
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Prediction.objects.exists()
    assert not any((Path(settings.MEDIA_ROOT) / "predictions").glob("*/*")), "nothing kept"


def test_settings_go_through_the_api_to_the_engine(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    """overlap 0.25, mirroring and LCC through the API: stored, shown, and the worker's label
    map is exactly what ``api.predict`` gives with those settings; the defaults are stored
    when nothing is sent."""
    from scipy import ndimage

    owner = make_user("tta", password="pw-options-1")
    model = make_engine_model(make_project(owner, name="TTA"), bundle[0])
    source = input_volume(bundle[1], tmp_path / "scan.nii.gz")
    client = _token_client(owner)
    response = client.post(f"/api/models/{model.pk}/infer",
                           {"files": [uploaded_file(source)], "overlap": "0.25", "mirror": "true", "postprocess": "lcc"})
    assert response.status_code == 202, response.content
    made = response.json()["predictions"][0]
    assert (made["overlap"], made["mirror"], made["postprocess"], made["use_ensemble"]) == (0.25, True, "lcc", False)
    response = client.post(f"/api/models/{model.pk}/infer", {"files": [uploaded_file(source)]})
    plain = response.json()["predictions"][0]
    assert (plain["overlap"], plain["mirror"], plain["postprocess"], plain["use_ensemble"]) == (0.5, False, "auto", False)

    body = _wait_final(client, made["id"], wait_for)
    assert body["status"] == "succeeded", (body, celery_worker.output()[-3000:])
    assert _wait_final(client, plain["id"], wait_for)["status"] == "succeeded"
    got = _label(client, made["id"], tmp_path, "tta.nii.gz")
    expected = _direct(model.bundle_path, source, tmp_path / "direct.nii.gz", overlap=0.25, mirror=True, postprocess="lcc")
    assert np.array_equal(got, expected)
    for value in (1, 2):  # LCC: at most one connected component per class
        assert ndimage.label(got == value)[1] <= 1
    default = _label(client, plain["id"], tmp_path, "plain.nii.gz")
    assert np.array_equal(default, _direct(model.bundle_path, source, tmp_path / "direct-plain.nii.gz"))

    page = Client()
    page.force_login(owner)
    html = page.get(f"/predictions/{made['id']}/").content.decode()
    assert "sliding windows overlapping by 25%" in html
    assert "mirroring test-time augmentation (8 flipped copies averaged)" in html
    assert "only the largest connected component of every class kept" in html
    html = page.get(f"/predictions/{plain['id']}/").content.decode()
    assert "sliding windows overlapping by 50%" in html and "no mirroring test-time augmentation" in html
    assert "as decided on the model&#x27;s validation cases" in html


def test_the_form_offers_the_settings_and_keeps_them(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    from webapp.predictions.models import Prediction

    owner = make_user("former")
    model = make_engine_model(make_project(owner, name="Form"), bundle[0])
    client = Client()
    client.force_login(owner)
    html = client.get(f"/models/{model.pk}/predict/").content.decode()
    assert 'name="overlap"' in html and 'value="0.5"' in html
    assert 'name="mirror"' in html and "8× slower" in html
    assert 'name="postprocess"' in html and 'value="lcc"' in html
    assert 'name="use_ensemble"' not in html  # no fold ensemble: nothing offered
    source = input_volume(bundle[1], tmp_path / "scan.nii.gz")
    response = client.post(f"/models/{model.pk}/predict/",
                           {"files": [uploaded_file(source)], "overlap": "0.3", "mirror": "on", "postprocess": "none"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    prediction = Prediction.objects.get()
    assert (prediction.overlap, prediction.mirror, prediction.postprocess) == (0.3, True, "none")
    assert _wait_final(client, prediction.pk, wait_for)["status"] == "succeeded", celery_worker.output()[-3000:]
    # A refused form keeps what was typed.
    html = client.post(f"/models/{model.pk}/predict/", {"files": [uploaded_file(source)], "overlap": "2",
                                                        "mirror": "on"}).content.decode()
    assert 'value="2"' in html and 'id="id_mirror" checked' in html


def _finished_fold_set(model, members: list[Path]):
    """A succeeded FoldSet of ``model`` whose ensemble folder names ``members`` (what
    ``evaluations.services.ensemble_run`` leaves, without training the folds)."""
    from nasengine import api
    from webapp.evaluations.models import FoldSet

    fold_set = FoldSet.objects.create(project=model.project, model=model, num_folds=len(members),
                                      ensemble_dir="ensembles/test-ensemble", mean_dice=0.8)
    api.make_ensemble(fold_set.ensemble_path, members, folds=list(range(len(members))))
    fold_set.transition(FoldSet.Status.RUNNING)
    fold_set.transition(FoldSet.Status.SUCCEEDED)
    return fold_set


def test_a_finished_fold_ensemble_is_offered_and_used(celery_worker, make_user, make_project, bundle, tmp_path, wait_for):
    """The form offers the k-fold ensemble; the worker predicts with the ensemble folder (the
    label map equals ``api.predict`` on that folder, not on the model alone); an ensemble gone
    since the prediction was queued fails it with a clear message."""
    owner = make_user("ensembler")
    model = make_engine_model(make_project(owner, name="Folds"), bundle[0])
    # Second member: the same network with other weights, so the ensemble is not the model.
    other = Path(settings.MEDIA_ROOT) / "fold-members" / "other"
    shutil.copytree(model.bundle_path, other)
    state = torch.load(other / "weights.pt", map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    state = {k: (v + torch.randn(v.shape, generator=generator) * v.float().std().nan_to_num(0.1) * 2
                 if v.is_floating_point() and v.numel() > 1 else v) for k, v in state.items()}
    torch.save(state, other / "weights.pt")
    fold_set = _finished_fold_set(model, [model.bundle_path, other])

    client = Client()
    client.force_login(owner)
    html = client.get(f"/models/{model.pk}/predict/").content.decode()
    assert 'name="use_ensemble"' in html and "Use the 2-fold ensemble" in html
    source = input_volume(bundle[1], tmp_path / "scan.nii.gz")
    response = client.post(f"/models/{model.pk}/predict/", {"files": [uploaded_file(source)], "use_ensemble": "true"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    pk = int(response["Location"].rstrip("/").split("/")[-1])
    body = _wait_final(client, pk, wait_for)
    assert body["status"] == "succeeded", (body, celery_worker.output()[-3000:])
    assert body["use_ensemble"] is True
    got = _label(client, pk, tmp_path, "ensemble.nii.gz")
    with_ensemble = _direct(fold_set.ensemble_path, source, tmp_path / "direct-ensemble.nii.gz")
    alone = _direct(model.bundle_path, source, tmp_path / "direct-alone.nii.gz")
    assert np.array_equal(got, with_ensemble)
    assert not np.array_equal(with_ensemble, alone), "the test's ensemble must differ from the model alone"
    assert "the model&#x27;s k-fold ensemble" in client.get(f"/predictions/{pk}/").content.decode()

    # Queued with the ensemble, which then goes: a failed prediction saying so, no 500. (A row
    # made without queueing, run here, so the worker cannot take it first.)
    from webapp.predictions import services

    shutil.rmtree(fold_set.ensemble_path)
    prediction = make_prediction(model, status="queued")
    prediction.use_ensemble = True
    prediction.save(update_fields=["use_ensemble"])
    services.prediction_run(prediction_id=prediction.pk)
    prediction.refresh_from_db()
    assert prediction.status == "failed"
    assert "k-fold ensemble is no longer there" in prediction.error
    assert 'name="use_ensemble"' not in client.get(f"/models/{model.pk}/predict/").content.decode()
