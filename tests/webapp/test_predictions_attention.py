"""Attention maps of DAST models in the prediction job: stored in the input's geometry for every
transformer op (or those picked), listed on the page, downloadable as NIfTI; nothing computed
for models without transformer ops.

The worker function (``services.prediction_run``) runs in this process on a real engine bundle
(a DAST genotype whose edges prefer the transformer, retrained for two steps).
"""
from __future__ import annotations

import html
import shutil

import nibabel as nib
import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from predictiontesting import dast_engine_bundle, engine_bundle, input_volume, make_engine_model

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture(scope="session")
def dast_bundle(tmp_path_factory):
    return dast_engine_bundle(tmp_path_factory)


def queued_prediction(model, scan, attention=()):
    """A queued prediction of ``scan`` (what ``prediction_create`` stores, without the queue)."""
    from webapp.predictions.models import Prediction

    prediction = Prediction(project=model.project, model=model, input_name=scan.name,
                            attention_request=list(attention))
    prediction.input_path = str((prediction.root / Prediction.INPUT_NAME).relative_to(settings.MEDIA_ROOT))
    prediction.root.mkdir(parents=True)
    shutil.copyfile(scan, prediction.input_file)
    prediction.save()
    return prediction


def test_every_transformer_op_gets_a_map_in_the_inputs_geometry(make_user, make_project, dast_bundle, tmp_path):
    from webapp.predictions import services

    owner = make_user("radiologist")
    model = make_engine_model(make_project(owner), dast_bundle[0], name="DAST model")
    sites = services.model_attention_sites(model)
    assert sites
    scan = input_volume(dast_bundle[1], tmp_path / "scan.nii.gz")
    prediction = services.prediction_run(prediction_id=queued_prediction(model, scan).pk)
    assert prediction.status == "succeeded", prediction.error
    assert [m["id"] for m in prediction.attention_maps] == [s["id"] for s in sites]
    source = nib.load(str(scan))
    for entry in prediction.attention_maps:
        image = nib.load(str(prediction.attention_dir / entry["file"]))
        assert image.shape == source.shape and np.allclose(image.affine, source.affine, atol=1e-5)
        data = np.asarray(image.dataobj)
        assert data.dtype == np.float32 and np.isfinite(data).all()
        assert entry["max"] == pytest.approx(float(data.max()), rel=1e-5)

    client = Client()
    client.force_login(owner)
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'id="attention-layer"' in page and 'id="attention-opacity"' in page
    assert "fold ensemble" not in page
    # a prediction made with the fold ensemble says whose attention the maps show
    type(prediction).objects.filter(pk=prediction.pk).update(use_ensemble=True)
    assert "the attention maps come from the model alone" in client.get(f"/predictions/{prediction.pk}/").content.decode()
    type(prediction).objects.filter(pk=prediction.pk).update(use_ensemble=False)
    for entry in prediction.attention_maps:
        assert f'value="{html.escape(entry["id"])}"' in page
    first = prediction.attention_maps[0]
    response = client.get(f"/predictions/{prediction.pk}/attention/{first['file']}")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'scan_{first["file"]}"')
    saved = tmp_path / "download.nii.gz"
    saved.write_bytes(b"".join(response.streaming_content))
    assert np.array_equal(np.asarray(nib.load(str(saved)).dataobj),
                          np.asarray(nib.load(str(prediction.attention_dir / first["file"])).dataobj))
    assert client.get(f"/predictions/{prediction.pk}/attention/label.nii.gz").status_code == 404
    body = client.get(f"/api/predictions/{prediction.pk}/").json()
    assert [m["id"] for m in body["attention_maps"]] == [m["id"] for m in prediction.attention_maps]
    assert body["attention_maps"][0]["url"] == f"/predictions/{prediction.pk}/attention/{first['file']}"


def test_only_the_picked_ops_are_stored(make_user, make_project, dast_bundle, tmp_path):
    from django.core.exceptions import ValidationError

    from webapp.predictions import services

    owner = make_user("picker")
    model = make_engine_model(make_project(owner), dast_bundle[0], name="DAST model")
    sites = services.model_attention_sites(model)
    picked = [sites[-1]["id"]]
    scan = input_volume(dast_bundle[1], tmp_path / "scan.nii.gz")
    prediction = services.prediction_run(prediction_id=queued_prediction(model, scan, picked).pk)
    assert [m["id"] for m in prediction.attention_maps] == picked
    assert sorted(p.name for p in prediction.attention_dir.iterdir()) == [prediction.attention_maps[0]["file"]]
    client = Client()
    client.force_login(owner)
    assert 'name="attention"' in client.get(f"/models/{model.pk}/predict/").content.decode()
    with pytest.raises(ValidationError, match="no transformer op at n9_9->n9_9"):
        services._attention_request(model, ["n9_9->n9_9"])


def test_nothing_is_computed_for_a_model_without_transformer_ops(make_user, make_project, tmp_path_factory, tmp_path):
    from webapp.predictions import services

    bundle, demo = engine_bundle(tmp_path_factory)  # a DiNTS model
    owner = make_user("plain")
    model = make_engine_model(make_project(owner), bundle)
    assert services.model_attention_sites(model) == []
    scan = input_volume(demo, tmp_path / "scan.nii.gz")
    prediction = services.prediction_run(prediction_id=queued_prediction(model, scan).pk)
    assert prediction.status == "succeeded" and prediction.attention_maps == []
    assert not prediction.attention_dir.exists()
    client = Client()
    client.force_login(owner)
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert "attention-layer" not in page
    assert 'name="attention"' not in client.get(f"/models/{model.pk}/predict/").content.decode()
