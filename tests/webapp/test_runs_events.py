"""Run events of any type, stages and progress: what the sink stores, what the run's progress
says, what the socket streams (real Redis channel layer, real uvicorn, real socket), and that a
run's history is only ever trimmed by a resume."""
from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from test_runs_support import make_demo_dataset, make_run

from webapp.runs.models import Run, RunEvent


@pytest.fixture
def lab(make_user, make_project, tmp_path):
    owner = make_user("owner")
    project = make_project(owner)
    return {"owner": owner, "project": project, "dataset": make_demo_dataset(project, owner, tmp_path)}


def _held_run(lab) -> Run:
    run = make_run(lab["project"], lab["dataset"], status="running")
    Run.objects.filter(pk=run.pk).update(claim_token="tok")
    return run


class Clock:
    """The reporter's clock, set by the test (event times decide the ETA)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db
def test_two_stages_and_namespaced_events_are_all_kept_with_their_stage_and_candidate(client, lab):
    from nasengine.events import Reporter
    from webapp.runs.events import RunEventSink

    run = _held_run(lab)
    reporter = Reporter([RunEventSink(run.pk, "tok")])
    reporter.rewind(0)  # a fresh start may rewind to 0: nothing is stored, nothing is dropped
    for stage, candidate in (("coarse", "c1"), ("fine", None)):
        extra = {"candidate": candidate} if candidate else {}
        reporter.emit("run_started", phase="search", stage=stage, total_steps=2, **extra)
        for step in (1, 2):  # each stage counts its own steps from 1
            reporter.emit("step", step=step, total_steps=2, stage=stage, losses={"seg": 1.0 / step},
                          metrics={"temperature": 5.0 - step}, **extra)
        reporter.emit("c2fnas.candidate_finished", stage=stage, score=0.5, **extra)
    stored = list(RunEvent.objects.filter(run=run).order_by("seq"))
    assert [e.seq for e in stored] == list(range(1, 9)), "a stage erased the other's events"
    assert [e.type for e in stored][3] == "c2fnas.candidate_finished"
    client.force_login(lab["owner"])
    events = client.get(f"/api/runs/{run.pk}/events?after=0").json()["events"]
    assert [(e["stage"], e.get("candidate")) for e in events] == [("coarse", "c1")] * 4 + [("fine", None)] * 4
    assert events[1]["metrics"] == {"temperature": 4.0} and events[3]["score"] == 0.5
    run.refresh_from_db()
    assert (run.progress["stage"], run.progress["step"], run.progress["total_steps"]) == ("fine", 2, 2)


@pytest.mark.django_db
def test_a_rewind_outside_a_resume_keeps_the_stored_events(lab):
    from nasengine.events import Reporter
    from webapp.runs.events import EventStreamRewound, RunEventSink

    run = _held_run(lab)
    reporter = Reporter([RunEventSink(run.pk, "tok")])
    for step in (1, 2, 3):
        reporter.emit("step", step=step, total_steps=3)
    with pytest.raises(EventStreamRewound):
        reporter.rewind(0)  # a loop that restarts the stream (the bug of issue 7)
    assert RunEvent.objects.filter(run=run).count() == 3
    resumed = Reporter([RunEventSink(run.pk, "tok", may_rewind=True)])
    resumed.rewind(2)  # a resume trims what it will emit again: once, before its first event
    resumed.emit("step", step=3, total_steps=3)
    with pytest.raises(EventStreamRewound):
        resumed.rewind(1)
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2, 3]


@pytest.mark.django_db
def test_overall_progress_and_eta_follow_the_events_progress_when_it_is_there(lab):
    from nasengine.events import Reporter
    from webapp.runs.events import RunEventSink

    run = _held_run(lab)
    clock = Clock()
    reporter = Reporter([RunEventSink(run.pk, "tok")], clock=clock)
    reporter.emit("run_started", phase="search", stage="coarse", total_steps=10, progress=0.0)
    clock.now += 10
    # Step 9 of 10 of its stage, but only a quarter of the whole run (more stages follow).
    reporter.emit("step", step=9, total_steps=10, stage="coarse", progress=0.25)
    run.refresh_from_db()
    assert run.progress["fraction"] == 0.25 and run.progress["eta_seconds"] == 30.0
    clock.now += 10
    reporter.emit("step", step=10, total_steps=10, stage="coarse")  # no overall figure: the stage's own
    run.refresh_from_db()
    assert run.progress["fraction"] == 1.0 and run.progress["eta_seconds"] == 0.0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_event_type_streams_and_a_big_event_crosses_the_layer_as_a_stub(
    lab, asgi_live_server, ws_connect, session_cookie,
):
    from channels.layers import get_channel_layer

    from nasengine.events import Reporter
    from webapp.runs.events import MAX_LAYER_EVENT_BYTES, RunEventSink, group_name

    run = _held_run(lab)
    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/runs/{run.pk}/", cookies=session_cookie(lab["owner"]))
    ws.sock.settimeout(30)
    assert ws.recv_json()["kind"] == "status"
    ws.send_text(json.dumps({"after": 0}))
    assert ws.recv_json() == {"kind": "replayed", "last_seq": 0}
    layer = get_channel_layer()
    listener = f"test-listener.{uuid.uuid4().hex}"  # a plain channel: each receive pops one message
    async_to_sync(layer.group_add)(group_name(run.pk), listener)

    reporter = Reporter([RunEventSink(run.pk, "tok")])
    reporter.emit("step", step=1, total_steps=4, stage="fine", candidate="k7", progress=0.5, losses={"seg": 0.7})
    reporter.emit("scnas.sampled_ops", stage="fine", counts={"conv_3x3x3": 3, "skip": 1})
    big_edges = [{"source": f"n{i}", "target": f"n{i + 1}", "op": "conv_3x3x3", "weight": i / 7000} for i in range(6000)]
    reporter.emit("architecture", step=1, genotype={"format": "voxelsearch-genotype", "edges": big_edges})

    received = [ws.recv_json()["event"] for _ in range(3)]
    assert [e["type"] for e in received] == ["step", "scnas.sampled_ops", "architecture"]
    assert received[0]["stage"] == "fine" and received[0]["candidate"] == "k7" and received[0]["progress"] == 0.5
    assert received[1]["counts"] == {"conv_3x3x3": 3, "skip": 1}
    assert received[2]["genotype"]["edges"] == big_edges, "the big event did not arrive whole"
    assert len(json.dumps(big_edges)) > 4 * MAX_LAYER_EVENT_BYTES

    async def three_messages():  # one event loop: channels-redis re-queues a message a new loop did not finish
        return [await layer.receive(listener) for _ in range(3)]

    through_layer = sorted(async_to_sync(three_messages)(), key=lambda m: m["event"]["seq"])
    sizes = [len(json.dumps(m)) for m in through_layer]
    assert all(size <= MAX_LAYER_EVENT_BYTES + 512 for size in sizes), sizes
    assert through_layer[2]["event"] == {"seq": 3, "type": "architecture", "time": received[2]["time"], "layer_stub": True}
    assert "layer_stub" not in through_layer[0]["event"]
