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


# --------------------------------------------------------------------------- checkpoint ownership
# (issue 13 item 7): a later attempt loads only checkpoints the ownership record vouches for.

def _later_attempt(make_user, make_project):
    from webapp.datasets.models import Dataset

    owner = make_user("owner")
    project = make_project(owner)
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    run = make_run(project, dataset, status="running")
    Run.objects.filter(pk=run.pk).update(attempts=2)
    return Run.objects.get(pk=run.pk)


def _write_checkpoint(run, token="t1", attempt=1):
    """A real checkpoint of stage ``main`` and the record its attempt wrote (the sink sees the
    engine's checkpoint event)."""
    from nasengine.training import checkpoint as ckpt
    from webapp.runs.runtime import CheckpointOwnership, checkpoint_dir

    path = ckpt.save(ckpt.stage_path(checkpoint_dir(run)), {"step": 4, "reporter_seq": 9})
    writer = Run.objects.get(pk=run.pk)
    writer.attempts = attempt
    CheckpointOwnership(writer, token)({"seq": 10, "type": "checkpoint", "step": 4, "path": str(path)})
    return path


def test_placeholder_bytes_at_the_checkpoint_path_are_moved_aside_not_loaded(make_user, make_project, caplog):
    """The issue's case: another test left placeholder bytes at runs/<x>/checkpoints/checkpoint.pt
    and no record of this run: the attempt starts from scratch and the file is kept aside."""
    from webapp.runs.runtime import FOREIGN_DIR, checkpoint_dir, start_point

    run = _later_attempt(make_user, make_project)
    placeholder = checkpoint_dir(run) / "checkpoint.pt"
    placeholder.parent.mkdir(parents=True)
    placeholder.write_bytes(b"not part of the bundle")
    with caplog.at_level("WARNING", logger="webapp.runs.runtime"):
        start = start_point(run)
    assert (start.resume, start.restart) == (False, True)
    assert not placeholder.exists()
    aside = list((run.out_dir / FOREIGN_DIR).iterdir())
    assert len(aside) == 1 and aside[0].read_bytes() == b"not part of the bundle"
    assert "no ownership record names this run" in caplog.text


def test_a_checkpoint_the_record_vouches_for_is_resumed(make_user, make_project):
    from webapp.runs.runtime import read_ownership, start_point

    run = _later_attempt(make_user, make_project)
    path = _write_checkpoint(run)
    record = read_ownership(run)
    assert record["run_id"] == run.pk and record["storage_key"] == str(run.storage_key)
    assert record["attempt"] == 1 and record["claim_token"] == "t1" and "checkpoint.pt" in record["files"]
    start = start_point(run)
    assert (start.resume, start.restart) == (True, False) and path.exists()


@pytest.mark.parametrize("tamper", ["bytes", "other_run", "other_folder", "same_attempt", "no_record"])
def test_a_checkpoint_not_vouched_for_is_not_loaded(make_user, make_project, tamper):
    import json

    from webapp.runs.runtime import FOREIGN_DIR, OWNERSHIP_FILE, start_point

    run = _later_attempt(make_user, make_project)
    path = _write_checkpoint(run, attempt=2 if tamper == "same_attempt" else 1)
    record_path = run.out_dir / OWNERSHIP_FILE
    record = json.loads(record_path.read_text())
    if tamper == "bytes":
        path.write_bytes(b"placeholder")  # same name, other bytes
    elif tamper == "other_run":
        record["run_id"] = run.pk + 1000
    elif tamper == "other_folder":
        record["storage_key"] = "00000000-0000-0000-0000-000000000000"
    elif tamper == "no_record":
        record_path.unlink()
    if tamper != "no_record":
        record_path.write_text(json.dumps(record))
    start = start_point(run)
    assert (start.resume, start.restart) == (False, True)
    assert not path.exists() and len(list((run.out_dir / FOREIGN_DIR).iterdir())) == 1


def test_a_later_attempt_with_placeholder_bytes_at_its_checkpoint_runs_from_scratch(
        make_user, make_project, tmp_path):
    """End to end in this process: a run on its second attempt whose checkpoint path holds
    placeholder bytes (what failed with "Weights only load failed") succeeds from scratch."""
    from webapp.runs import services
    from webapp.runs.runtime import FOREIGN_DIR, checkpoint_dir, run_execute

    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    run = services.run_create_search(actor=owner, dataset=dataset, method=WORKHORSE_METHOD, preset="tiny",
                                     config=TINY, gpu_budget_bytes=8 * GB)
    # as if an earlier attempt had died before writing anything of its own
    Run.objects.filter(pk=run.pk).update(attempts=1, status="running",
                                         heartbeat_at=timezone.now() - timedelta(hours=1))
    run = Run.objects.get(pk=run.pk)
    placeholder = checkpoint_dir(run) / "checkpoint.pt"
    placeholder.parent.mkdir(parents=True, exist_ok=True)
    placeholder.write_bytes(b"not part of the bundle")
    assert run_execute(run_id=run.pk, worker="here@test") == "done"
    done = Run.objects.get(pk=run.pk)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert [p.read_bytes() for p in (done.out_dir / FOREIGN_DIR).iterdir()] == [b"not part of the bundle"]
    starts = list(RunEvent.objects.filter(run=done, type="run_started").values_list("payload", flat=True))
    assert starts and starts[0].get("resumed_from_step") is None
