"""Runs without a worker: the state machine, launch validation (engine config, memory budget),
estimate, cancel of a queued run, clone, genotype upload, events API and the event sink's
rewind, pages."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from test_runs_support import GB, TINY, WORKHORSE_METHOD, make_demo_dataset, make_run, tiny_genotype

from webapp.runs.engine import format_gb
from webapp.runs.models import IllegalTransition, Run, RunEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_user, make_project, tmp_path, monkeypatch):
    """A project with a ready demo dataset; jobs are not sent (no worker in these tests)."""
    from webapp.runs import services

    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda run: sent.append(run.pk))
    owner, viewer = make_user("owner"), make_user("viewer")
    project = make_project(owner, viewers=[viewer])
    dataset = make_demo_dataset(project, owner, tmp_path)
    return {"owner": owner, "viewer": viewer, "project": project, "dataset": dataset, "sent": sent}


def _launch(client, setup, **body):
    payload = {"dataset": setup["dataset"].pk, "method": WORKHORSE_METHOD, "preset": "tiny", "config": dict(TINY),
               "gpu_budget_bytes": 8 * GB, **body}
    return client.post(f"/api/projects/{setup['project'].pk}/runs/", payload, content_type="application/json")


# --- state machine ---------------------------------------------------------------------------
def test_state_machine_allows_only_its_transitions(setup):
    run = make_run(setup["project"], setup["dataset"])
    with pytest.raises(IllegalTransition):
        run.transition("succeeded")  # queued -> succeeded skips running
    run.transition("running")
    assert run.started_at is not None and Run.objects.get(pk=run.pk).status == "running"
    with pytest.raises(IllegalTransition):
        run.transition("queued")
    run.claim_token = "x"
    run.transition("succeeded")
    saved = Run.objects.get(pk=run.pk)
    assert saved.status == "succeeded" and saved.finished_at is not None and saved.claim_token == ""
    for target in ("running", "failed", "cancelled", "queued"):
        with pytest.raises(IllegalTransition):
            saved.transition(target)
    with pytest.raises(IllegalTransition):
        make_run(setup["project"], setup["dataset"]).transition("paused")
    cancelled = make_run(setup["project"], setup["dataset"])
    cancelled.transition("cancelled")  # a queued run may be cancelled before it starts
    assert cancelled.is_final


# --- launch ----------------------------------------------------------------------------------
def test_launch_creates_a_queued_run_and_queues_it(client, setup):
    client.force_login(setup["owner"])
    response = _launch(client, setup, seed=7, name="first")
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert (run.status, run.kind, run.method, run.preset, run.seed, run.name) == ("queued", "search", WORKHORSE_METHOD, "tiny", 7, "first")
    assert run.resolved_config["search_steps"] == 4 and run.resolved_config["seed"] == 7
    assert 0 < run.estimate_bytes <= run.gpu_budget_bytes
    assert setup["sent"] == [run.pk]
    assert body["url"] == f"/runs/{run.pk}/"


@pytest.mark.parametrize("config,field", [
    ({"num_layers": 0}, "config.num_layers"),
    ({"patch_size": [30, 32, 32]}, "config"),  # not divisible by 2^num_depths
    ({"no_such_setting": 1}, "config"),
    ({"sigma": "high"}, "config.sigma"),
])
def test_bad_config_answers_400_with_field_errors_and_creates_nothing(client, setup, config, field):
    client.force_login(setup["owner"])
    response = _launch(client, setup, config={**TINY, **config})
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert Run.objects.count() == 0 and setup["sent"] == []


def test_bad_method_preset_and_dataset_are_refused(client, setup, make_project):
    client.force_login(setup["owner"])
    assert "method" in _launch(client, setup, method="nope").json()
    assert "preset" in _launch(client, setup, preset="huge").json()
    other = make_project(setup["owner"], name="Other")
    from webapp.datasets.models import Dataset

    elsewhere = Dataset.objects.create(project=other, name="E", source="files")
    response = _launch(client, setup, dataset=elsewhere.pk)
    assert response.status_code == 400 and "dataset" in response.json()
    assert Run.objects.count() == 0


def test_a_config_that_does_not_fit_the_budget_is_refused_with_the_numbers(client, setup):
    client.force_login(setup["owner"])
    estimate = client.post(f"/api/datasets/{setup['dataset'].pk}/estimate/",
                           {"method": WORKHORSE_METHOD, "preset": "tiny", "config": TINY, "gpu_budget_bytes": 1000},
                           content_type="application/json").json()
    needed = estimate["needed_bytes"]
    assert estimate["fits"] is False and needed > 1000 and estimate["what"] == "search"
    budget = needed - 1
    response = _launch(client, setup, gpu_budget_bytes=budget)
    assert response.status_code == 400
    message = " ".join(response.json()["gpu_budget_bytes"])
    assert f"needs {format_gb(needed)} to search, budget {format_gb(budget)}" in message
    assert format_gb(7.9e9) == "7.9 GB" and format_gb(36_000_000) == "36 MB"
    assert Run.objects.count() == 0
    assert _launch(client, setup, gpu_budget_bytes=needed).status_code == 201  # exactly enough fits


def test_estimate_follows_the_settings(client, setup):
    client.force_login(setup["viewer"])  # reading an estimate creates nothing: viewers may
    url = f"/api/datasets/{setup['dataset'].pk}/estimate/"
    small = client.post(url, {"method": WORKHORSE_METHOD, "preset": "tiny", "config": TINY, "gpu_budget_bytes": 8 * GB}, content_type="application/json").json()
    big = client.post(url, {"method": WORKHORSE_METHOD, "preset": "tiny", "config": {**TINY, "patch_size": [64, 64, 64]}, "gpu_budget_bytes": 8 * GB}, content_type="application/json").json()
    assert small["fits"] and big["needed_bytes"] > small["needed_bytes"]
    bad = client.post(url, {"method": WORKHORSE_METHOD, "preset": "tiny", "config": {"num_depths": 9}}, content_type="application/json")
    assert bad.status_code == 400 and "config.num_depths" in bad.json()


def test_defaults_come_from_the_preset_and_the_dataset_plan(client, setup):
    from nasengine.config import config_to_dict
    from nasengine.methods import get_method

    method = get_method(WORKHORSE_METHOD)
    preset = config_to_dict(method.make_config("paper", {}))
    divisor = method.data_settings(method.make_config("paper", {})).divisor
    client.force_login(setup["owner"])
    paper = client.get(f"/api/datasets/{setup['dataset'].pk}/run-defaults/?method={WORKHORSE_METHOD}&preset=paper").json()["config"]
    assert {k: v for k, v in paper.items() if k != "patch_size"} == {k: v for k, v in preset.items() if k != "patch_size"}
    # The paper's patch does not fit 32^3 demo volumes: the plan's patch does (a multiple of the divisor).
    assert paper["patch_size"] != preset["patch_size"]
    assert all(s <= 32 and s % divisor == 0 for s in paper["patch_size"]), paper["patch_size"]
    methods = client.get("/api/methods/").json()
    listed = next(m for m in methods["methods"] if m["name"] == WORKHORSE_METHOD)
    assert listed["schema"] == json.loads(json.dumps(method.schema())) and "tiny" in listed["presets"]
    assert "steps" in methods["retrain"]["properties"]


def test_viewers_cannot_launch(client, setup):
    client.force_login(setup["viewer"])
    assert _launch(client, setup).status_code == 403
    assert Run.objects.count() == 0


# --- cancel, clone ---------------------------------------------------------------------------
def test_cancelling_a_queued_run_cancels_it_at_once_and_a_final_run_refuses(client, setup):
    client.force_login(setup["owner"])
    run_id = _launch(client, setup).json()["id"]
    response = client.post(f"/api/runs/{run_id}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    run = Run.objects.get(pk=run_id)
    assert run.cancel_requested and run.status == "cancelled"
    assert client.post(f"/api/runs/{run_id}/cancel/").status_code == 400


def test_cancelling_a_running_run_only_sets_the_flag(client, setup):
    client.force_login(setup["owner"])
    run = make_run(setup["project"], setup["dataset"], status="running")
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 302
    run.refresh_from_db()
    assert run.status == "running" and run.cancel_requested  # the engine stops cooperatively


def test_clone_with_an_edited_config(client, setup):
    client.force_login(setup["owner"])
    original = _launch(client, setup, name="base").json()
    response = client.post(f"/api/runs/{original['id']}/clone/", {"config": {**TINY, "search_steps": 6}}, content_type="application/json")
    assert response.status_code == 201, response.content
    clone = Run.objects.get(pk=response.json()["id"])
    assert clone.parent_id == original["id"] and clone.resolved_config["search_steps"] == 6
    assert clone.method == WORKHORSE_METHOD and clone.preset == "tiny" and clone.name == "base (copy)"
    bad = client.post(f"/api/runs/{original['id']}/clone/", {"config": {"num_layers": -1}}, content_type="application/json")
    assert bad.status_code == 400 and Run.objects.count() == 2
    page = client.get(f"/runs/{original['id']}/clone/")
    assert page.status_code == 200 and b'id="launch-form"' in page.content


# --- retrain an uploaded genotype -------------------------------------------------------------
def test_uploading_an_invalid_genotype_is_refused_clearly(client, setup):
    client.force_login(setup["owner"])
    url = f"/api/datasets/{setup['dataset'].pk}/retrain/"
    broken = tiny_genotype()
    broken["edges"][0]["op"] = "rm -rf"
    response = client.post(url, {"genotype": broken, "preset": "tiny", "gpu_budget_bytes": 8 * GB}, content_type="application/json")
    assert response.status_code == 400
    assert "edges[0].op" in " ".join(response.json()["genotype"])
    not_json = SimpleUploadedFile("arch.json", b"{not json", content_type="application/json")
    response = client.post(url, {"genotype_file": not_json, "preset": "tiny", "gpu_budget_bytes": str(8 * GB)})
    assert response.status_code == 400 and "not valid JSON" in " ".join(response.json()["genotype"])
    wrong_classes = tiny_genotype(out_channels=5)
    response = client.post(url, {"genotype": wrong_classes, "preset": "tiny", "gpu_budget_bytes": 8 * GB}, content_type="application/json")
    assert response.status_code == 400 and "5 classes" in " ".join(response.json()["genotype"])
    page = client.post(f"/datasets/{setup['dataset'].pk}/retrain/", {
        "genotype_file": SimpleUploadedFile("a.json", json.dumps(broken).encode()), "preset": "tiny", "gpu_budget_gb": "8"})
    assert page.status_code == 400 and b"edges[0].op" in page.content
    assert Run.objects.count() == 0 and setup["sent"] == []


def test_uploading_a_valid_genotype_queues_a_retrain(client, setup):
    client.force_login(setup["owner"])
    upload = SimpleUploadedFile("arch.json", json.dumps(tiny_genotype()).encode())
    response = client.post(f"/datasets/{setup['dataset'].pk}/retrain/", {"genotype_file": upload, "preset": "tiny", "gpu_budget_gb": "8"})
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.kind == "retrain" and run.genotype["method"] == WORKHORSE_METHOD and setup["sent"] == [run.pk]
    assert response["Location"] == f"/runs/{run.pk}/"


def test_retrain_of_a_search_needs_a_succeeded_search(client, setup):
    client.force_login(setup["owner"])
    queued = make_run(setup["project"], setup["dataset"])
    body = {"preset": "tiny", "gpu_budget_bytes": 8 * GB}
    assert client.post(f"/api/runs/{queued.pk}/retrain/", body, content_type="application/json").status_code == 400
    done = make_run(setup["project"], setup["dataset"], status="succeeded", genotype=tiny_genotype())
    response = client.post(f"/api/runs/{done.pk}/retrain/", body, content_type="application/json")
    assert response.status_code == 201
    assert Run.objects.get(pk=response.json()["id"]).source_run_id == done.pk


# --- events ----------------------------------------------------------------------------------
def test_event_sink_stores_in_order_and_a_resume_rewind_drops_later_events(client, setup):
    from nasengine.events import Reporter
    from webapp.runs.events import LostClaim, RunEventSink

    run = make_run(setup["project"], setup["dataset"], status="running")
    Run.objects.filter(pk=run.pk).update(claim_token="tok")
    reporter = Reporter([RunEventSink(run.pk, "tok")])
    reporter.emit("run_started", phase="search", total_steps=10)
    for step in range(1, 5):
        reporter.emit("step", step=step, total_steps=10, phase="search", losses={"seg": 1.0 / step})
    reporter.emit("validation", step=4, dice={"a": 0.5}, mean_dice=0.5)
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2, 3, 4, 5, 6]
    run.refresh_from_db()
    assert (run.progress["step"], run.progress["total_steps"], run.progress["phase"]) == (4, 10, "search")
    assert run.progress["fraction"] == 0.4 and run.best_mean_dice == 0.5
    # The next attempt resumes from a checkpoint taken at seq 3: its sink may rewind once.
    resumed = Reporter([RunEventSink(run.pk, "tok", may_rewind=True)])
    resumed.rewind(3)
    resumed.emit("step", step=3, total_steps=10, phase="search", losses={"seg": 0.3})
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2, 3, 4]
    client.force_login(setup["viewer"])
    page = client.get(f"/api/runs/{run.pk}/events?after=2").json()
    assert [e["seq"] for e in page["events"]] == [3, 4] and page["events"][1]["losses"] == {"seg": 0.3}
    assert page["last_seq"] == 4
    # Another worker took the run over: this sink must not write any more.
    Run.objects.filter(pk=run.pk).update(claim_token="other")
    with pytest.raises(LostClaim):
        resumed.emit("step", step=4, total_steps=10, phase="search", losses={})
    assert RunEvent.objects.filter(run=run).count() == 4


# --- pages -----------------------------------------------------------------------------------
def test_pages_render(client, setup):
    client.force_login(setup["owner"])
    dataset, project = setup["dataset"], setup["project"]
    launch = client.get(f"/datasets/{dataset.pk}/search/")
    assert launch.status_code == 200 and b"js/runs/launch.js" in launch.content and b'id="schema-form"' in launch.content
    assert b'id="start-search"' in client.get(f"/datasets/{dataset.pk}/").content
    searched = make_run(project, dataset, status="succeeded", genotype=tiny_genotype(), best_mean_dice=0.4)
    other = make_run(project, dataset, status="succeeded", genotype=tiny_genotype(), best_mean_dice=0.7)
    make_run(project, dataset)
    detail = client.get(f"/runs/{searched.pk}/")
    assert detail.status_code == 200 and b"js/runs/dashboard.js" in detail.content and b'id="arch-graph"' in detail.content
    arch = client.get(f"/runs/{searched.pk}/architecture/")
    assert arch.status_code == 200 and b"fig-params" in arch.content and b'id="genotype-data"' in arch.content
    compare = client.get(f"/projects/{project.pk}/architectures/compare/?a={searched.pk}&b={other.pk}")
    assert compare.status_code == 200 and compare.content.count(b"compare-side") == 2
    download = client.get(f"/runs/{searched.pk}/genotype.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert download.json()["format"] == "voxelsearch-genotype"
    retrain = client.get(f"/runs/{searched.pk}/retrain/")
    assert retrain.status_code == 200 and b'"kind": "retrain"' in retrain.content


def test_run_list_sorts(client, setup):
    client.force_login(setup["owner"])
    project, dataset = setup["project"], setup["dataset"]
    low = make_run(project, dataset, status="succeeded", best_mean_dice=0.2)
    high = make_run(project, dataset, status="succeeded", best_mean_dice=0.9)
    none = make_run(project, dataset)
    ids = [r["id"] for r in client.get(f"/api/projects/{project.pk}/runs/?sort=dice").json()]
    assert ids == [high.pk, low.pk, none.pk]
    ids = [r["id"] for r in client.get(f"/api/projects/{project.pk}/runs/?sort=-dice").json()]
    assert ids == [none.pk, low.pk, high.pk]
    page = client.get(f"/projects/{project.pk}/runs/?sort=dice").content.decode()
    assert page.index(f'data-run-id="{high.pk}"') < page.index(f'data-run-id="{low.pk}"') < page.index(f'data-run-id="{none.pk}"')


def test_delete_a_run_only_when_final_and_without_a_model(client, setup, media_root, django_capture_on_commit_callbacks):
    from test_runs_support import make_model

    client.force_login(setup["owner"])
    running = make_run(setup["project"], setup["dataset"], status="running")
    response = client.delete(f"/api/runs/{running.pk}/")
    assert response.status_code == 400 and "cancel it" in response.json()["detail"]
    model = make_model(setup["project"], setup["dataset"], media_root)
    assert client.delete(f"/api/runs/{model.run_id}/").status_code == 400  # delete the model first
    done = make_run(setup["project"], setup["dataset"], status="failed")
    done.out_dir.mkdir(parents=True)
    RunEvent.objects.create(run=done, seq=1, type="run_started", time=0.0, payload={})
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/runs/{done.pk}/").status_code == 204
    assert not Run.objects.filter(pk=done.pk).exists() and not RunEvent.objects.filter(run_id=done.pk).exists()
    assert not done.out_dir.exists()
    assert client.delete(f"/api/models/{model.pk}/").status_code == 204
    assert client.post(f"/runs/{model.run_id}/delete/").status_code == 302
    assert not Run.objects.filter(pk=model.run_id).exists()
