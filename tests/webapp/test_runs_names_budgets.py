"""Run names, budgets and resume without a worker process (issue 13 items 2, 3, 6; issue 14 item
9 and F7): default names that say what a run is, renaming through the API, a budget too big for
the database answered 400 (launch, clone, estimate, upload form), the worker registry's bound on
a launch, an estimated duration from measured step times, and resume of a cancelled run."""
from __future__ import annotations

import json

import pytest
from test_runs_support import GB, TINY, WORKHORSE_METHOD, make_demo_dataset, make_run, tiny_genotype

from webapp.runs.models import Run, RunEvent

pytestmark = pytest.mark.django_db

HUGE = 10**29


@pytest.fixture
def setup(make_user, make_project, tmp_path, monkeypatch):
    from webapp.runs import services

    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda run: sent.append(run.pk))  # no worker in these tests
    owner, viewer = make_user("owner"), make_user("viewer")
    project = make_project(owner, viewers=[viewer])
    dataset = make_demo_dataset(project, owner, tmp_path)
    dataset.name = "Liver CT"
    dataset.save(update_fields=["name"])
    return {"owner": owner, "viewer": viewer, "project": project, "dataset": dataset, "sent": sent}


@pytest.fixture
def registered_worker():
    """``add(hostname, free_bytes, device)``: a worker's report in the registry, as
    webapp.common.workers.report writes it; removed after the test."""
    from webapp.common import workers

    added = []

    def add(hostname: str, free_bytes: int, device: str = "cuda:0") -> None:
        entry = {"hostname": hostname, "queues": ["default", "gpu"], "reported_at": 0, "device": device,
                 "device_name": "test device", "total_bytes": free_bytes, "free_bytes": free_bytes}
        workers._redis().set(workers._key(hostname), json.dumps(entry), ex=workers.TTL_SECONDS)
        added.append(hostname)

    yield add
    for hostname in added:
        workers.forget(hostname)


def _launch(client, setup, **body):
    payload = {"dataset": setup["dataset"].pk, "method": WORKHORSE_METHOD, "preset": "tiny", "config": dict(TINY),
               "gpu_budget_bytes": 8 * GB, **body}
    return client.post(f"/api/projects/{setup['project'].pk}/runs/", payload, content_type="application/json")


# --- names -----------------------------------------------------------------------------------
def test_a_run_without_a_name_is_named_for_what_it_is(client, setup):
    client.force_login(setup["owner"])
    response = _launch(client, setup, seed=3)
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "DiNTS · Liver CT · tiny · seed 3"
    search = Run.objects.get(pk=response.json()["id"])
    search.transition("running")
    search.genotype = tiny_genotype()
    search.save(update_fields=["genotype"])
    search.transition("succeeded")
    retrain = client.post(f"/api/runs/{search.pk}/retrain/", {"preset": "tiny", "gpu_budget_bytes": 8 * GB},
                          content_type="application/json")
    assert retrain.status_code == 201, retrain.content
    assert retrain.json()["name"] == "Retrain of DiNTS · Liver CT · tiny · seed 3 · tiny · seed 0"
    clone = client.post(f"/api/runs/{search.pk}/clone/", {"seed": 5}, content_type="application/json")
    assert clone.status_code == 201, clone.content
    assert clone.json()["name"] == "DiNTS · Liver CT · tiny · seed 5"  # a default name is not "(copy)"-ed


def test_a_run_is_renamed_through_the_api_and_only_by_writers(client, setup):
    run = make_run(setup["project"], setup["dataset"], name="old")
    client.force_login(setup["viewer"])
    assert client.patch(f"/api/runs/{run.pk}/", {"name": "mine"}, content_type="application/json").status_code == 403
    client.force_login(setup["owner"])
    response = client.patch(f"/api/runs/{run.pk}/", {"name": "  Liver, wider lattice  "}, content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "Liver, wider lattice"
    too_long = client.patch(f"/api/runs/{run.pk}/", {"name": "x" * 201}, content_type="application/json")
    assert too_long.status_code == 400 and "name" in too_long.json()
    blank = client.patch(f"/api/runs/{run.pk}/", {"name": ""}, content_type="application/json")
    assert blank.json()["name"] == "DiNTS · Liver CT · tiny · seed 0"
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-name-edit"' in page and "DiNTS · Liver CT · tiny · seed 0" in page


# --- budgets -----------------------------------------------------------------------------------
def test_a_budget_too_big_for_the_database_is_a_400_on_launch_clone_estimate_and_the_form(client, setup):
    client.force_login(setup["owner"])
    response = _launch(client, setup, gpu_budget_bytes=HUGE)
    assert response.status_code == 400 and "gpu_budget_bytes" in response.json(), response.content
    run = make_run(setup["project"], setup["dataset"], status="succeeded")
    clone = client.post(f"/api/runs/{run.pk}/clone/", {"gpu_budget_bytes": HUGE}, content_type="application/json")
    assert clone.status_code == 400 and "gpu_budget_bytes" in clone.json()
    estimate = client.post(f"/api/datasets/{setup['dataset'].pk}/estimate/", {"method": WORKHORSE_METHOD, "preset": "tiny",
                           "gpu_budget_bytes": HUGE}, content_type="application/json")
    assert estimate.status_code == 400 and "gpu_budget_bytes" in estimate.json()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = client.post(f"/datasets/{setup['dataset'].pk}/retrain/", {
        "genotype_file": SimpleUploadedFile("g.json", json.dumps(tiny_genotype()).encode()), "preset": "tiny",
        "gpu_budget_gb": "1e29", "seed": 0})
    assert upload.status_code == 400 and b"GPU memory budget" in upload.content
    assert not Run.objects.exclude(pk=run.pk).exists()


def test_a_launch_that_fits_no_connected_worker_is_refused_with_the_numbers(client, setup, registered_worker):
    """The client's budget (10 TB) cannot raise the bound the workers give."""
    from webapp.common import workers

    registered_worker("small-gpu@test", 2 * 10**6)
    registered_worker("mid-gpu@test", GB)
    most_free = max(w["free_bytes"] for w in workers.gpu_queue_workers())
    client.force_login(setup["owner"])
    # a configuration that needs more memory than any connected worker has free
    big = {**TINY, "patch_size": [256, 256, 256], "stem_filters": 64, "batch_size": 16}
    estimate = client.post(f"/api/datasets/{setup['dataset'].pk}/estimate/", {
        "method": WORKHORSE_METHOD, "preset": "tiny", "config": big, "gpu_budget_bytes": 10**13},
        content_type="application/json").json()
    assert estimate["needed_bytes"] > most_free, "the test configuration must exceed every worker's free memory"
    assert estimate["workers"]["fits"] is False and estimate["workers"]["bound_bytes"] == most_free
    response = _launch(client, setup, config=big, gpu_budget_bytes=10**13)
    assert response.status_code == 400, response.content
    message = " ".join(response.json()["gpu_budget_bytes"])
    assert "free" in message and "needs" in message and "GB" in message
    assert not Run.objects.exists() and setup["sent"] == []
    small = _launch(client, setup)  # the tiny preset fits the worker with the most memory
    assert small.status_code == 201, small.content


def test_with_no_gpu_worker_up_the_form_defaults_to_a_cpu_preset_and_says_why(client, setup, registered_worker):
    from webapp.common import workers

    client.force_login(setup["owner"])
    launch = client.get(f"/datasets/{setup['dataset'].pk}/search/").context["launch"]
    if workers.gpu_worker_up():
        pytest.skip("a CUDA worker is connected to this Redis")
    assert launch["workers"]["gpu_worker_up"] is False
    assert launch["preferred_presets"] == ["cpu", "tiny"]
    assert launch["default_method"] == "dints"
    registered_worker("big-gpu@test", 80 * GB, device="cuda:0")
    launch = client.get(f"/datasets/{setup['dataset'].pk}/search/").context["launch"]
    assert launch["workers"]["gpu_worker_up"] is True and launch["preferred_presets"] == []


def test_the_estimate_gives_a_duration_from_a_finished_runs_step_times_or_says_none_yet(client, setup):
    client.force_login(setup["owner"])
    body = {"method": WORKHORSE_METHOD, "preset": "tiny", "config": dict(TINY), "gpu_budget_bytes": 8 * GB}
    url = f"/api/datasets/{setup['dataset'].pk}/estimate/"
    first = client.post(url, body, content_type="application/json").json()["duration"]
    assert first["seconds"] is None and first["message"].startswith("no measurement yet")
    done = make_run(setup["project"], setup["dataset"], status="succeeded", worker="w1@host")
    RunEvent.objects.create(run=done, seq=1, type="run_started", time=100.0, payload={"device": "cpu", "total_steps": 6})
    for step in range(1, 7):  # 0.5 s per step
        RunEvent.objects.create(run=done, seq=1 + step, type="step", time=100.0 + 0.5 * step, payload={"step": step})
    second = client.post(url, body, content_type="application/json").json()["duration"]
    steps = TINY["warmup_steps"] + TINY["weight_only_steps"] + TINY["search_steps"]
    assert second["steps"] == steps and second["seconds"] == pytest.approx(0.5 * steps)
    assert second["measured"]["run"] == done.pk and "w1@host" in second["message"]


# --- resume ----------------------------------------------------------------------------------
def test_a_cancelled_run_is_resumed_once_and_queued_again(client, setup):
    run = make_run(setup["project"], setup["dataset"], status="running")
    Run.objects.filter(pk=run.pk).update(attempts=2, cancel_requested=True)
    run.refresh_from_db()
    run.transition("cancelled")
    client.force_login(setup["viewer"])
    assert client.post(f"/api/runs/{run.pk}/resume/").status_code == 403
    client.force_login(setup["owner"])
    response = client.post(f"/api/runs/{run.pk}/resume/")
    assert response.status_code == 202, response.content
    run.refresh_from_db()
    assert (run.status, run.cancel_requested, run.finished_at, run.attempts) == ("queued", False, None, 2)
    assert setup["sent"] == [run.pk]
    again = client.post(f"/api/runs/{run.pk}/resume/")
    assert again.status_code == 400 and "cancelled" in again.content.decode()
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="resume-form"' in page


def test_resumes_do_not_use_up_the_lost_worker_allowance(client, setup):
    """A run cancelled and resumed more often than MAX_ATTEMPTS is still claimed each time;
    only workers lost since the last resume count towards giving it up."""
    from webapp.runs import runtime

    run = make_run(setup["project"], setup["dataset"], status="queued")
    client.force_login(setup["owner"])
    for resume in range(runtime.MAX_ATTEMPTS + 2):
        claimed = runtime.claim(run.pk, "w@host")
        assert claimed not in (None, "busy"), f"resume {resume}: the run was not claimed"
        run, _token = claimed
        assert run.status == "running" and run.attempts == resume + 1
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        run.refresh_from_db()
        run.transition("cancelled")
        response = client.post(f"/api/runs/{run.pk}/resume/")
        assert response.status_code == 202, response.content
        run.refresh_from_db()
        assert run.status == "queued" and run.attempts_at_resume == run.attempts
    # workers lost after the last resume: the first MAX_ATTEMPTS claims are granted, then it fails
    for lost in range(runtime.MAX_ATTEMPTS):
        assert runtime.claim(run.pk, f"w{lost}@host") not in (None, "busy")
        Run.objects.filter(pk=run.pk).update(heartbeat_at=None)  # its worker went silent
    assert runtime.claim(run.pk, "last@host") is None
    run.refresh_from_db()
    assert run.status == "failed" and f"{runtime.MAX_ATTEMPTS} times" in run.error


# --- controls (issue 12's launch_controls, from the retrain form) -----------------------------
def test_a_retrain_that_asks_for_controls_launches_them_once_it_succeeds(client, setup, django_capture_on_commit_callbacks,
                                                                       tmp_path_factory):
    import shutil

    from django.db import transaction
    from predictiontesting import engine_bundle

    from webapp.mlmodels.services import register_model

    bundle, _ = engine_bundle(tmp_path_factory)  # a real bundle of the engine (built once per session)
    client.force_login(setup["owner"])
    response = client.post(f"/api/datasets/{setup['dataset'].pk}/retrain/", {
        "genotype": json.loads((bundle / "genotype.json").read_text()), "preset": "tiny", "gpu_budget_bytes": 8 * GB, "controls": True},
        content_type="application/json")
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.controls_requested and run.created_by == setup["owner"]
    page = client.get(f"/runs/{run.pk}/clone/").content.decode()
    assert 'id="launch-controls"' in page and "hand-designed U-Net" in page
    # the worker's part (runtime.run_execute / finish): train, write the bundle, register, succeed
    run.transition("running")
    shutil.copytree(bundle, run.bundle_dir, dirs_exist_ok=True)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            register_model(run)
            run.transition("succeeded")
    controls = list(Run.objects.filter(parent=run).order_by("pk"))
    assert len(controls) == 2 and all(c.kind == "retrain" and c.status == "queued" for c in controls), controls
    assert "random architecture" in controls[0].name and not any(c.controls_requested for c in controls)
    assert setup["sent"][-2:] == [c.pk for c in controls]

