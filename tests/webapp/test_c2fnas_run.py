"""A C2FNAS search launched as a web run goes through the Celery candidate executor.

With the session's real Celery worker (default + gpu queues): the worker runtime hands the run
to ``candidates.start_run_search`` (it does not train in the claiming task), the orchestration's
and every candidate's events are stored as events of the run, once each, with seqs 1..N, the
fields ``stage`` / ``candidate`` / ``origin``, monotonic overall ``progress``; the run succeeds
with the genotype ``c2fnas_finish`` wrote. Cancelling a running search stops its candidates and
the run ends cancelled. In-process: a stream that rewinds drops only its own events and the
run's seqs close up.
"""
from __future__ import annotations

import json

import pytest
from test_runs_support import GB, make_demo_dataset

from nasengine.events.sinks import read_events
from webapp.runs.models import Run, RunEvent

pytestmark = [pytest.mark.django_db(transaction=True)]

FAST = {"candidates": 3, "fine_candidates": 2}


def _search(owner, dataset, config):
    from webapp.runs import services

    return services.run_create_search(actor=owner, dataset=dataset, method="c2fnas", preset="tiny",
                                      config=config, gpu_budget_bytes=8 * GB)


def _final(run_id):
    return Run.objects.filter(pk=run_id, status__in=["succeeded", "failed", "cancelled"]).first()


@pytest.mark.slow
def test_a_web_c2fnas_search_runs_on_the_candidate_executor_and_stores_every_event_once(
        make_user, make_project, tmp_path, celery_worker, wait_for):
    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    run = _search(owner, dataset, FAST)
    done = wait_for(lambda: _final(run.pk), 300, interval=0.5)
    log = celery_worker.output()[-4000:]
    assert done.status == "succeeded", (done.error, log)
    assert done.genotype["method"] == "c2fnas" and done.genotype["kind"] == "ushape"
    assert "webapp.runs.candidates.c2fnas_train_candidate" in celery_worker.output()

    root = done.out_dir
    assert json.loads((root / "settings.json").read_text())["meta"] == {
        "run_id": done.pk, "storage_key": str(done.storage_key)}
    assert json.loads((root / "genotype.json").read_text()) == done.genotype

    events = list(RunEvent.objects.filter(run=done).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "a gap or a duplicate"
    assert events[-1].type == "finished"
    finished = [e.payload for e in events if e.type == "c2fnas.candidate_finished"]
    assert len(finished) == len({p["candidate"] for p in finished}) == FAST["candidates"]
    assert all(p["worker"].startswith("test-") and "@" in p["worker"] for p in finished), finished
    assert finished[-1]["cluster_counts"] and sum(finished[-1]["cluster_counts"]) == FAST["candidates"]
    assert len([e for e in events if e.type == "c2fnas.fine_candidate"]) == FAST["fine_candidates"]

    # every stream stored whole and once: the run's events of a stream are its file's events
    streams = {"search": read_events(root / "events.jsonl")}
    for folder in sorted((root / "candidates").iterdir()):
        streams[folder.name] = read_events(folder / "events.jsonl")
    assert len(streams) == 1 + FAST["candidates"]
    for name, stream in streams.items():
        stored = [e for e in events if e.payload["origin"][0] == name]
        assert [e.payload["origin"][1] for e in stored] == [e["seq"] for e in stream], name
        assert [e.type for e in stored] == [e["type"] for e in stream], name
    steps = [e.payload for e in events if e.type == "step"]
    candidate_steps = [p for p in steps if p["stage"].startswith("coarse-")]
    assert candidate_steps and all(p["candidate"] and p["stage"] == f"coarse-{p['candidate'][:16]}"
                                   for p in candidate_steps)
    assert {p["stage"] for p in steps} >= {"supernet"}
    progress = [p["progress"] for p in steps]
    assert progress == sorted(progress) and 0 < progress[-1] <= 1, progress
    assert done.progress["fraction"] == progress[-1] and done.best_mean_dice is not None
    assert done.progress["fraction"] == 1.0 and done.progress["phase"] == "done", done.progress


@pytest.mark.slow
def test_cancelling_a_web_c2fnas_search_stops_its_candidates(make_user, make_project, tmp_path,
                                                            celery_worker, wait_for):
    from nasengine.methods.c2fnas import distributed
    from webapp.runs import services

    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    run = _search(owner, dataset, {"candidates": 4, "steps": 400, "checkpoint_every": 0})
    wait_for(lambda: RunEvent.objects.filter(run=run, type="step").exists(), 240, interval=0.3)
    services.run_cancel(actor=owner, run=Run.objects.get(pk=run.pk))
    done = wait_for(lambda: _final(run.pk), 120, interval=0.3)
    assert done.status == "cancelled", (done.error, celery_worker.output()[-3000:])
    root = done.out_dir
    assert (root / "cancel").exists() and distributed.training_candidates(root) == []
    assert not list((root / "results").glob("*.json")), "a candidate trained on after the cancel"
    steps = RunEvent.objects.filter(run=done, type="step").count()
    assert steps < 400, "the candidate did not stop at its next step"
    types = list(RunEvent.objects.filter(run=done).order_by("seq").values_list("type", flat=True))
    assert "cancelled" in types and "finished" not in types
    seqs = list(RunEvent.objects.filter(run=done).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_stream_rewind_drops_its_own_events_and_closes_up_the_runs_seqs(
        make_user, make_project, tmp_path):
    """Two streams interleaved; the candidate stream rewinds to its seq 1 (a resume from its
    checkpoint): its later events go, the other stream's keep their order, seqs stay 1..N, and
    what the stream emits next is stored after them. A final run's history is frozen."""
    from test_runs_support import make_run

    from webapp.datasets.models import Dataset
    from webapp.runs.candidates import RunStreamSink

    owner = make_user("owner")
    project = make_project(owner)
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    run = make_run(project, dataset, status="running")
    search, cand = RunStreamSink(run.pk, "search", tmp_path), RunStreamSink(run.pk, "coarse-ab", tmp_path)
    search({"seq": 1, "type": "run_started", "time": 1.0, "stage": "coarse"})
    cand({"seq": 1, "type": "run_started", "time": 2.0, "stage": "coarse-ab", "candidate": "ab"})
    cand({"seq": 2, "type": "step", "time": 3.0, "step": 1, "stage": "coarse-ab", "progress": 0.2})
    search({"seq": 2, "type": "c2fnas.candidate_submitted", "time": 4.0})
    cand({"seq": 3, "type": "step", "time": 5.0, "step": 2, "stage": "coarse-ab", "progress": 0.1})
    stored = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type", "payload"))
    assert [s for s, _, _ in stored] == [1, 2, 3, 4, 5]
    assert [p["progress"] for _, t, p in stored if t == "step"] == [0.2, 0.2]  # never backwards

    cand.rewind(1)
    cand({"seq": 2, "type": "step", "time": 6.0, "step": 1, "stage": "coarse-ab"})
    stored = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type", "payload"))
    assert [(s, t, *p["origin"]) for s, t, p in stored] == [
        (1, "run_started", "search", 1), (2, "run_started", "coarse-ab", 1),
        (3, "c2fnas.candidate_submitted", "search", 2), (4, "step", "coarse-ab", 2)]
    assert stored[-1][2]["step"] == 1

    search.rewind(5)  # nothing of that stream after 5: no change
    assert RunEvent.objects.filter(run=run).count() == 4
    Run.objects.filter(pk=run.pk).update(status="cancelled")
    cand.rewind(0)
    search({"seq": 3, "type": "cancelled", "time": 7.0})
    assert RunEvent.objects.filter(run=run).count() == 4


@pytest.mark.slow
def test_a_web_c2fnas_search_over_two_gpu_workers_survives_a_killed_worker(
        make_user, make_project, tmp_path, subprocess_env, celery_worker, monkeypatch, wait_for):
    """Own workers under a private Redis prefix (orchestration on default, two gpu workers):
    both train candidates at once, one is SIGKILLed mid-candidate, a third takes over; the run
    succeeds, candidates are named by the worker that trained them (two different ones), and
    the run's events hold each event once: the killed attempt's events after its checkpoint
    were dropped and the run's seqs closed up."""
    from celery import Celery
    from test_c2fnas_workers import _stop, _two_training_at_once, _worker

    from webapp.runs import services

    owner = make_user("owner")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    monkeypatch.setattr(services, "_enqueue", lambda run: None)  # sent below, to our own workers
    run = _search(owner, dataset, {"candidates": 4, "steps": 6, "checkpoint_every": 2, "fine_stage": False})
    prefix = f"{subprocess_env['REDIS_KEY_PREFIX']}c2run{run.pk}:"
    env = {**subprocess_env, "REDIS_KEY_PREFIX": prefix, "VOXELSEARCH_RUN_STALE_SECONDS": "10",
           "VOXELSEARCH_C2FNAS_SLOTS": "2"}
    sender = Celery("sender", broker=subprocess_env["REDIS_URL"], set_as_current=False)
    sender.conf.broker_transport_options = {"global_keyprefix": prefix}
    procs = {}
    root = run.out_dir
    try:
        procs["orchestra"] = _worker(env, tmp_path / "orchestra.log", "orchestra", "default")
        procs["gpu1"] = _worker(env, tmp_path / "gpu1.log", "gpu1", "gpu")
        procs["gpu2"] = _worker(env, tmp_path / "gpu2.log", "gpu2", "gpu")
        sender.send_task("webapp.runs.tasks.run_search", args=[run.pk], queue="gpu")
        running = wait_for(lambda: _two_training_at_once(root), 240)
        killed_dir, owner_name = running[0]
        victim = owner_name.split("@", 1)[0]
        procs[victim].kill()
        procs[victim].wait(timeout=10)
        procs["gpu3"] = _worker(env, tmp_path / "gpu3.log", "gpu3", "gpu")
        done = wait_for(lambda: _final(run.pk), 400, interval=0.5)
    finally:
        logs = "".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log"))
        for proc in procs.values():
            _stop(proc)
        sender.close()
    assert done.status == "succeeded", (done.error, logs)

    events = list(RunEvent.objects.filter(run=done).order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "a gap or a duplicate"
    finished = [e.payload for e in events if e.type == "c2fnas.candidate_finished"]
    assert len(finished) == len({p["candidate"] for p in finished}) == 4
    workers = {p["worker"].split("@", 1)[0] for p in finished}
    assert len(workers) >= 2 and workers <= {"gpu1", "gpu2", "gpu3"}, workers
    stream = read_events(killed_dir / "events.jsonl")
    stored = [e for e in events if e.payload["origin"][0] == killed_dir.name]
    assert [e.payload["origin"][1] for e in stored] == [e["seq"] for e in stream]
    steps = [e.payload["step"] for e in stored if e.type == "step"]
    assert steps == list(range(1, len(steps) + 1)), "a step of the killed candidate stored twice or lost"
    assert len([e for e in stored if e.type == "run_started"]) == 2  # first attempt, then the resume
