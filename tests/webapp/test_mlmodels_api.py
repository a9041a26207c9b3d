"""Registered models: register_model, list/detail API and pages, bundle .zip and network downloads."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.core.exceptions import ValidationError
from test_runs_support import WORKHORSE_METHOD, make_model, make_run

from webapp.mlmodels.models import TrainedModel
from webapp.mlmodels.services import register_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, make_project, media_root):
    from webapp.datasets.models import Dataset

    owner, viewer, outsider = make_user("owner"), make_user("viewer"), make_user("outsider")
    project = make_project(owner, viewers=[viewer])
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    model = make_model(project, dataset, media_root)
    return {"owner": owner, "viewer": viewer, "outsider": outsider, "project": project, "dataset": dataset, "model": model}


def test_register_model_reads_the_bundle_and_is_idempotent(world):
    model = world["model"]
    assert model.val_dice == {"a": 0.5, "b": 0.25} and model.mean_dice == 0.375
    assert model.label_names["1"] == "a" and model.channel_names == ["image"] and model.method == WORKHORSE_METHOD
    assert model.bundle_dir == f"runs/{model.run.storage_key}" and (model.bundle_path / "bundle.json").is_file()
    assert register_model(model.run).pk == model.pk and TrainedModel.objects.count() == 1
    search = make_run(world["project"], world["dataset"], status="succeeded")
    with pytest.raises(ValidationError):
        register_model(search)  # a search produces an architecture, not a model
    missing = make_run(world["project"], world["dataset"], kind="retrain", status="succeeded")
    with pytest.raises(ValidationError):
        register_model(missing)  # no bundle.json
    assert TrainedModel.objects.count() == 1


def test_model_api_lists_only_own_projects(client, world):
    client.force_login(world["viewer"])
    listed = client.get("/api/models/").json()
    assert [m["id"] for m in listed] == [world["model"].pk]
    assert listed[0]["bundle_url"] == f"/api/models/{world['model'].pk}/bundle.zip"
    assert client.get(f"/api/models/?project={world['project'].pk}").json()[0]["val_dice"]["a"] == 0.5
    client.force_login(world["outsider"])
    assert client.get("/api/models/").json() == []
    assert client.get(f"/api/models/{world['model'].pk}/").status_code == 404


def test_bundle_zip_holds_the_bundle_without_checkpoints_and_network_downloads(client, world):
    client.force_login(world["viewer"])
    for url in (f"/api/models/{world['model'].pk}/bundle.zip", f"/models/{world['model'].pk}/bundle.zip"):
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        names = sorted(n.split("/", 1)[1] for n in archive.namelist())
        assert names == ["bundle.json", "genotype.json", "network.pt2", "weights.pt"]
        assert archive.read(next(n for n in archive.namelist() if n.endswith("weights.pt"))) == b"weights"
    network = client.get(f"/api/models/{world['model'].pk}/network")
    assert network.status_code == 200 and b"".join(network.streaming_content) == b"exported"
    assert network["Content-Disposition"].endswith('.pt2"')
    (world["model"].bundle_path / "network.pt2").unlink()
    assert client.get(f"/api/models/{world['model'].pk}/network").status_code == 404


def test_rename_needs_write_access(client, world):
    url = f"/api/models/{world['model'].pk}/"
    client.force_login(world["viewer"])
    assert client.patch(url, {"name": "x"}, content_type="application/json").status_code == 403
    client.force_login(world["owner"])
    assert client.patch(url, {"name": ""}, content_type="application/json").status_code == 400
    assert client.patch(url, {"name": "Liver v1"}, content_type="application/json").json()["name"] == "Liver v1"


def test_model_pages(client, world):
    client.force_login(world["viewer"])
    page = client.get(f"/models/{world['model'].pk}/").content.decode()
    assert "download-bundle" in page and "download-network" in page and "0.375" in page
    assert f'data-model-id="{world["model"].pk}"' in client.get("/models/").content.decode()
    client.force_login(world["outsider"])
    assert "data-model-id" not in client.get("/models/").content.decode()


def test_pages_lead_from_a_project_to_its_runs_and_from_a_model_to_predicting(client, world):
    predict_url = f"/models/{world['model'].pk}/predict/"
    client.force_login(world["owner"])
    assert f'href="{predict_url}"' in client.get(f"/models/{world['model'].pk}/").content.decode()
    assert f'href="/projects/{world["project"].pk}/runs/"' in client.get(f"/projects/{world['project'].pk}/").content.decode()
    client.force_login(world["viewer"])  # viewers may look, not predict
    assert predict_url not in client.get(f"/models/{world['model'].pk}/").content.decode()


def test_a_models_default_name_says_what_it_is_and_it_can_be_renamed_on_its_page(client, world, media_root):
    model = world["model"]
    assert model.name == "DiNTS · D · tiny · seed 0"
    assert model.figures["parameters"] > 0 and model.figures["flops"] > 0  # stored when registered
    named = make_model(world["project"], world["dataset"], media_root)
    named.run.name = "Liver, wide search"  # a name the researcher gave the retraining
    named.run.save()
    named.delete()
    assert register_model(named.run).name == "Liver, wide search"
    client.force_login(world["owner"])
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="model-rename"' in page and 'id="model-parameters"' in page and "DiNTS" in page
    response = client.post(f"/models/{model.pk}/", {"action": "rename", "name": "Liver v2"}, follow=True)
    assert "now called “Liver v2”" in response.content.decode()
    assert client.post(f"/models/{model.pk}/", {"action": "rename", "name": " "}, follow=True).status_code == 200
    model.refresh_from_db()
    assert model.name == "Liver v2"
    client.force_login(world["viewer"])
    assert 'id="model-rename"' not in client.get(f"/models/{model.pk}/").content.decode()
    assert client.post(f"/models/{model.pk}/", {"action": "rename", "name": "Nope"}).status_code == 403
