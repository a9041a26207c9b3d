"""Every registered method through the web app, with no method named in web code: the launch
data carries each method's whole schema, defaults, estimates and launches work for each, and
retraining uses the settings and presets of the architecture's own method."""
from __future__ import annotations

import json

import pytest
from test_runs_support import GB, make_demo_dataset, make_run, tiny_genotype
from webtoy_method import OWN_RETRAIN_PRESET, OWN_RETRAIN_STEPS, registered_webtoy

from webapp.runs import engine
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db


def _registered() -> list[str]:
    from nasengine.methods import registry

    return sorted(registry)


@pytest.fixture
def setup(make_user, make_project, tmp_path, monkeypatch):
    from webapp.runs import services

    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda run: sent.append(run.pk))
    owner = make_user("owner")
    project = make_project(owner)
    return {"owner": owner, "project": project, "dataset": make_demo_dataset(project, owner, tmp_path), "sent": sent}


@pytest.fixture
def webtoy():
    with registered_webtoy() as name:
        yield name


def test_the_registry_is_not_empty():
    assert _registered(), "no search method is registered"


@pytest.mark.parametrize("name", _registered())
def test_the_catalogue_carries_each_methods_whole_schemas(client, setup, name):
    from nasengine.methods import get_method

    client.force_login(setup["owner"])
    listed = {m["name"]: m for m in client.get("/api/methods/").json()["methods"]}
    method = get_method(name)
    assert listed[name]["schema"] == json.loads(json.dumps(method.schema()))
    assert listed[name]["retrain_schema"] == json.loads(json.dumps(method.retrain_schema()))
    assert sorted(listed[name]["presets"]) == sorted(method.presets)


@pytest.mark.parametrize("name", _registered())
def test_each_method_gets_defaults_an_estimate_and_a_launch(client, setup, name):
    from nasengine.methods import get_method

    client.force_login(setup["owner"])
    dataset = setup["dataset"]
    preset = "tiny" if "tiny" in get_method(name).presets else get_method(name).default_preset
    defaults = client.get(f"/api/datasets/{dataset.pk}/run-defaults/?method={name}&preset={preset}")
    assert defaults.status_code == 200 and defaults.json()["config"], defaults.content
    estimate = client.post(f"/api/datasets/{dataset.pk}/estimate/",
                           {"method": name, "preset": preset, "config": {}, "gpu_budget_bytes": 1000 * GB},
                           content_type="application/json").json()
    assert estimate["needed_bytes"] > 0 and estimate["fits"] is True and estimate["budget_bytes"] == 1000 * GB
    assert estimate["what"] == "search" and estimate["message"].startswith("needs ")
    response = client.post(f"/api/projects/{setup['project'].pk}/runs/", {
        "dataset": dataset.pk, "method": name, "preset": preset, "config": {}, "gpu_budget_bytes": 1000 * GB,
    }, content_type="application/json")
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert (run.method, run.status) == (name, "queued") and setup["sent"] == [run.pk]


def test_nested_objects_string_arrays_enum_arrays_and_help_reach_the_form_whole(client, setup, webtoy):
    client.force_login(setup["owner"])
    schema = next(m for m in client.get("/api/methods/").json()["methods"] if m["name"] == webtoy)["schema"]
    flips = schema["properties"]["flips"]
    assert flips["type"] == "object" and flips["description"] == "Patch flipping."
    assert flips["properties"]["enabled"]["description"] == "Flip training patches at random."
    axes = flips["properties"]["axes"]
    assert axes["type"] == "array" and axes["items"]["enum"] == ["x", "y", "z"] and axes["default"] == ["x", "y"]
    assert schema["properties"]["tags"]["items"]["type"] == "string"
    # ... and the values such a form sends are accepted and resolved by the engine.
    response = client.post(f"/api/projects/{setup['project'].pk}/runs/", {
        "dataset": setup["dataset"].pk, "method": webtoy, "preset": "tiny", "gpu_budget_bytes": 1000 * GB,
        "config": {"flips": {"enabled": False, "axes": ["z"]}, "tags": ["pilot", "liver"]},
    }, content_type="application/json")
    assert response.status_code == 201, response.content
    resolved = Run.objects.get(pk=response.json()["id"]).resolved_config
    assert resolved["flips"] == {"enabled": False, "axes": ["z"]} and resolved["tags"] == ["pilot", "liver"]
    bad = client.post(f"/api/datasets/{setup['dataset'].pk}/estimate/", {
        "method": webtoy, "preset": "tiny", "config": {"flips": {"axes": ["w"]}}}, content_type="application/json")
    assert bad.status_code == 400 and "config" in bad.json()


def test_retraining_uses_the_settings_and_presets_of_the_architectures_method(client, setup, webtoy):
    client.force_login(setup["owner"])
    project, dataset = setup["project"], setup["dataset"]
    genotype = {**tiny_genotype(), "method": webtoy}
    search = make_run(project, dataset, status="succeeded", genotype=genotype)
    Run.objects.filter(pk=search.pk).update(method=webtoy)
    # The launch page asks for this method's retraining schema, which has its own preset.
    page = client.get(f"/runs/{search.pk}/retrain/").content.decode()
    launch = json.loads(page.split('id="launch-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert launch["retrain_method"] == webtoy and launch["catalogue_url"] == f"/api/methods/?method={webtoy}"
    catalogue = client.get(launch["catalogue_url"]).json()
    # its own preset, beside the shared recipes the engine gives every method (default, cpu)
    assert OWN_RETRAIN_PRESET in catalogue["retrain"]["x-presets"]
    assert OWN_RETRAIN_PRESET not in client.get("/api/methods/").json()["retrain"]["x-presets"]
    defaults = client.get(f"/api/datasets/{dataset.pk}/run-defaults/?kind=retrain&run={search.pk}&preset={OWN_RETRAIN_PRESET}")
    assert defaults.json()["config"]["steps"] == OWN_RETRAIN_STEPS
    estimate = client.post(f"/api/datasets/{dataset.pk}/estimate/", {
        "kind": "retrain", "run": search.pk, "preset": OWN_RETRAIN_PRESET, "gpu_budget_bytes": 8 * GB},
        content_type="application/json")
    assert estimate.status_code == 200 and estimate.json()["resolved_config"]["steps"] == OWN_RETRAIN_STEPS
    response = client.post(f"/api/runs/{search.pk}/retrain/", {"gpu_budget_bytes": 8 * GB}, content_type="application/json")
    assert response.status_code == 201, response.content
    retrain = Run.objects.get(pk=response.json()["id"])  # no preset given: the method's default
    assert retrain.method == webtoy and retrain.preset == engine.default_retrain_preset(webtoy)
    assert retrain.preset in catalogue["retrain"]["x-presets"]
    own = client.post(f"/api/runs/{search.pk}/retrain/", {"preset": OWN_RETRAIN_PRESET, "gpu_budget_bytes": 8 * GB},
                      content_type="application/json")
    assert own.status_code == 201, own.content
    assert Run.objects.get(pk=own.json()["id"]).resolved_config["steps"] == OWN_RETRAIN_STEPS
    # A genotype of the workhorse keeps the shared presets, which do not have this one.
    plain = make_run(project, dataset, status="succeeded", genotype=tiny_genotype())
    refused = client.post(f"/api/runs/{plain.pk}/retrain/", {"preset": OWN_RETRAIN_PRESET, "gpu_budget_bytes": 8 * GB},
                          content_type="application/json")
    assert refused.status_code == 400 and "preset" in refused.json()


def test_the_genotype_upload_form_offers_every_methods_retraining_presets(client, setup, webtoy):
    client.force_login(setup["owner"])
    page = client.get(f"/datasets/{setup['dataset'].pk}/retrain/").content.decode()
    assert f'value="{OWN_RETRAIN_PRESET}"' in page and 'value="tiny"' in page
