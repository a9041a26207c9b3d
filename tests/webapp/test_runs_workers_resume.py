"""With a real Celery worker, Redis and Chromium: the worker reports its device and free memory
to the registry when it starts (issue 14 item 9), the launch form starts from the preset that
suits the connected workers with DiNTS selected and says how long the run will take (issue 13
item 2), and a cancelled search resumes from its checkpoint to success with every event once
(issue 13 item 3)."""
from __future__ import annotations

import pytest
from test_runs_support import GB, WORKHORSE_METHOD, make_demo_dataset

from webapp.runs.models import Run, RunEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def lab(make_user, make_project, tmp_path):
    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    return {"owner": owner, "project": project, "dataset": dataset}


def test_the_worker_reports_its_device_and_free_memory_when_it_starts(celery_worker, wait_for):
    from webapp.common import workers

    entry = wait_for(lambda: next((w for w in workers.connected_workers() if w["hostname"].startswith("test-")), None), 30)
    assert entry["device"] == "cpu" or entry["device"].startswith("cuda:")
    assert "gpu" in entry["queues"] and 0 < entry["free_bytes"] <= entry["total_bytes"]
    assert workers.memory_bound()["bytes"] >= entry["free_bytes"]


def test_a_cancelled_search_resumes_from_its_checkpoint_to_success(client, lab, celery_worker, wait_for):
    client.force_login(lab["owner"])
    # enough steps that the cancel lands mid-run even on a quiet machine (a tiny step is fast)
    config = {"search_steps": 30, "warmup_steps": 1, "weight_only_steps": 1, "lr_milestones": [],
              "snapshot_every": 10, "validate_every": 0, "checkpoint_every": 0}
    response = client.post(f"/api/projects/{lab['project'].pk}/runs/", {
        "dataset": lab["dataset"].pk, "method": WORKHORSE_METHOD, "preset": "tiny", "config": config,
        "gpu_budget_bytes": 8 * GB}, content_type="application/json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    wait_for(lambda: RunEvent.objects.filter(run_id=run_id, type="step").exists(), 90, 0.05)
    assert client.post(f"/api/runs/{run_id}/cancel/").status_code == 202
    run = wait_for(lambda: Run.objects.filter(pk=run_id, status__in=["succeeded", "failed", "cancelled"]).first(), 60)
    assert run.status == "cancelled", (run.status, run.error)
    stopped_at = RunEvent.objects.filter(run=run).order_by("-seq").first().payload["step"]
    assert 0 < stopped_at < 32

    assert client.post(f"/api/runs/{run_id}/resume/").status_code == 202
    try:
        run = wait_for(lambda: Run.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(), 600)
    except AssertionError:
        run = Run.objects.get(pk=run_id)
        steps = list(RunEvent.objects.filter(run=run).values_list("seq", "type", "payload__step"))
        raise AssertionError(f"the resumed run is {run.status} (attempts {run.attempts}), events {steps}; worker log:\n"
                             f"{celery_worker.output()[-3000:]}") from None
    assert run.status == "succeeded", run.error
    events = list(RunEvent.objects.filter(run=run).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # every event once, in order
    starts = [e for e in events if e.type == "run_started"]
    assert starts[-1].payload.get("resumed_from_step"), "the second attempt did not resume from the checkpoint"
    assert not any(e.type == "cancelled" for e in events)  # the resume rewound past the cancel
    steps = [e.payload["step"] for e in events if e.type == "step" and e.payload.get("phase") == starts[-1].payload["phase"]]
    assert len(steps) == len(set(steps))  # no step reported twice
    assert events[-1].type == "finished" and run.genotype


def test_the_launch_form_suits_the_connected_workers_and_gives_a_duration(
    lab, celery_worker, asgi_live_server, session_cookie, wait_for, monkeypatch,
):
    from browsertesting import CHROMIUM_ARGS, find_chromium
    from playwright.sync_api import sync_playwright

    from webapp.common import workers
    from webapp.runs import engine

    chromium = find_chromium()
    wait_for(lambda: workers.gpu_queue_workers(), 30)
    gpu_up = workers.gpu_worker_up()
    presets = next(m["presets"] for m in engine.catalogue()["methods"] if m["name"] == "dints")
    expected = "paper" if gpu_up else ("cpu" if "cpu" in presets else "tiny")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = asgi_live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": session_cookie(lab["owner"])["sessionid"], "url": base}])
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/datasets/{lab['dataset'].pk}/search/")
            page.wait_for_function("() => document.querySelector('#estimate-duration').textContent.includes('worker')")
            assert page.input_value("#launch-method") == "dints"
            assert page.input_value("#launch-preset") == expected
            text = page.inner_text("#estimate-duration")
            assert "no measurement yet" in text and "Connected workers: test-" in text, text
        finally:
            browser.close()
