"""A worker killed mid-run: the run is picked up again by the next worker that starts, continues
from its last checkpoint, and finishes as one run with no duplicated events. Two workers never
run the same run at once (claim guard)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from test_runs_support import GB, TINY, WORKHORSE_METHOD, make_demo_dataset, make_run

from webapp.runs.models import Run, RunEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STALE_SECONDS = 3
REPO = Path(__file__).resolve().parents[2]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_ready(proc: subprocess.Popen, log: Path, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def _worker(env, log: Path, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "gpu", "--pool", "solo", "--concurrency", "1",
           "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_ready(proc, log, name)
    return proc


def test_a_killed_worker_leaves_the_run_resumable_and_the_next_worker_finishes_it(
    make_user, make_project, tmp_path, subprocess_env, celery_worker, monkeypatch, wait_for,
):
    """The session's shared worker is started first (so its own start-up cannot interfere); this
    test's workers use a private Redis key prefix, so only they see this run's task."""
    from celery import Celery

    from webapp.runs import services

    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    monkeypatch.setattr(services, "_enqueue", lambda run: None)  # sent below, to our own workers
    run = services.run_create_search(
        actor=owner, dataset=dataset, method=WORKHORSE_METHOD, preset="tiny",
        config={**TINY, "search_steps": 16, "checkpoint_every": 4, "validate_every": 0, "snapshot_every": 4},
        gpu_budget_bytes=8 * GB,
    )
    prefix = f"{subprocess_env['REDIS_KEY_PREFIX']}kill{run.pk}:"
    env = {**subprocess_env, "REDIS_KEY_PREFIX": prefix, "VOXELSEARCH_RUN_STALE_SECONDS": str(STALE_SECONDS)}
    sender = Celery("sender", broker=subprocess_env["REDIS_URL"], set_as_current=False)  # keep the app the other tests use
    sender.conf.broker_transport_options = {"global_keyprefix": prefix}
    first = _worker(env, tmp_path / "first.log", "first")
    try:
        sender.send_task("webapp.runs.tasks.run_search", args=[run.pk], queue="gpu")
        wait_for(lambda: RunEvent.objects.filter(run=run, type="checkpoint").exists(), 120)
        first.kill()  # SIGKILL mid-run: no clean-up, the task is never acknowledged
        first.wait(timeout=10)
        killed_at = RunEvent.objects.filter(run=run).count()
        assert Run.objects.get(pk=run.pk).status == "running"
        second = _worker(env, tmp_path / "second.log", "second")  # on start it re-queues runs left running
        try:
            done = wait_for(lambda: Run.objects.filter(pk=run.pk, status__in=["succeeded", "failed", "cancelled"]).first(), 300)
        finally:
            _stop(second)
    finally:
        _stop(first)
        sender.close()
    output = "".join((tmp_path / f"{n}.log").read_text(errors="replace") for n in ("first", "second") if (tmp_path / f"{n}.log").exists())
    assert done.status == "succeeded", (done.error, output[-4000:])
    assert Run.objects.filter(project=project).count() == 1
    assert done.attempts == 2 and done.worker.startswith("second@")
    events = list(RunEvent.objects.filter(run=done).order_by("seq").values_list("seq", "type", "payload"))
    seqs = [s for s, _, _ in events]
    assert seqs == list(range(1, len(seqs) + 1)), "duplicated or missing events"
    starts = [p for _, t, p in events if t == "run_started"]
    assert len(starts) == 2 and starts[0]["resumed_from_step"] is None and starts[1]["resumed_from_step"] >= 4
    steps = [p["step"] for _, t, p in events if t == "step"]
    assert steps == list(range(1, 1 + len(steps))) and steps[-1] == done.progress["total_steps"], "a step was lost or repeated"
    assert killed_at > 0 and events[-1][1] == "finished"


def test_a_run_held_by_a_live_worker_is_not_taken_but_a_stale_one_is(make_user, make_project, tmp_path, settings):
    from webapp.runs.runtime import claim

    settings.VOXELSEARCH_RUN_STALE_SECONDS = 60
    owner = make_user("owner")
    project = make_project(owner)
    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.create(project=project, name="D", source="files")
    run = make_run(project, dataset)
    claimed, token = claim(run.pk, "a@host")
    assert claimed.status == "running" and claimed.attempts == 1
    assert claim(run.pk, "b@host") == "busy"  # fresh heartbeat: another worker keeps off
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    taken, new_token = claim(run.pk, "b@host")
    assert new_token != token and taken.worker == "b@host" and taken.attempts == 2
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    assert claim(run.pk, "c@host") is None  # a late duplicate delivery does nothing


def test_orphans_are_requeued_once_per_stale_period(make_user, make_project, settings, monkeypatch):
    from webapp.datasets.models import Dataset
    from webapp.runs import tasks
    from webapp.runs.runtime import run_requeue_orphans

    settings.VOXELSEARCH_RUN_STALE_SECONDS = 60
    sent = []
    monkeypatch.setattr(tasks.run_search, "apply_async", lambda args, countdown: sent.append((args[0], countdown)))
    owner = make_user("owner")
    project = make_project(owner)
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    alive = make_run(project, dataset, status="running")
    dead = make_run(project, dataset, status="running")
    Run.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())
    Run.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    make_run(project, dataset, status="succeeded")
    assert run_requeue_orphans(stale_only=True) == [dead.pk] and sent == [(dead.pk, 0)]
    assert run_requeue_orphans(stale_only=True) == []  # one re-sent job per stale period
    sent.clear()
    assert run_requeue_orphans() == [alive.pk] and sent == [(alive.pk, 61.0)]  # worker start: check later
