"""The distributed search steps (``advance`` / ``run_candidate`` / ``finish``) driven in this
process by a plain message list (the Celery executor's logic without Celery): one worker gives
the local search's genotype; two slots keep two candidates in flight; results arriving in any
order and duplicate messages are recorded once; each stream is numbered without gaps."""
from __future__ import annotations

import json

import pytest

from nasengine import api
from nasengine.events.sinks import read_events
from nasengine.methods.c2fnas import distributed

FAST = {"candidates": 3, "fine_stage": False}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return api.make_demo_data(tmp_path_factory.mktemp("demo"), n_cases=4, shape=(32, 32, 32))


def run_messages(root, *, reverse: bool = False, duplicate: bool = False) -> list[int]:
    """Advance, train what was sent (newest first when ``reverse``), repeat; returns how many
    candidates were in flight after each advance."""
    queue: list[dict] = []
    widths = []
    while True:
        status = distributed.advance(root, queue.append)
        widths.append(len(queue))
        if status == "coarse_done":
            break
        assert queue, "advance sent nothing while the search runs"
        batch = list(reversed(queue)) if reverse else list(queue)
        queue.clear()
        for spec in batch:
            assert distributed.run_candidate(root, spec, "w") in ("done", "known")
            if duplicate:
                assert distributed.run_candidate(root, spec, "w") == "known"
    return widths


def test_one_worker_gives_the_local_searchs_genotype(demo, tmp_path):
    local = api.search("c2fnas", demo, tmp_path / "local", preset="tiny", overrides=FAST,
                       device="cpu")
    root = tmp_path / "dist"
    distributed.start(root, demo, preset="tiny", overrides=FAST, workers=1)
    widths = run_messages(root, duplicate=True)
    assert max(widths) == 1
    assert distributed.finish(root) == local
    assert json.loads((root / "genotype.json").read_text()) == local


def test_two_slots_keep_two_candidates_in_flight_and_record_each_once(demo, tmp_path):
    distributed.start(tmp_path, demo, preset="tiny", overrides=FAST, workers=2)
    widths = run_messages(tmp_path, reverse=True)
    assert widths[0] == 2  # both slots filled at once
    distributed.finish(tmp_path)
    events = read_events(tmp_path / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finished = [e["candidate"] for e in events if e["type"] == "c2fnas.candidate_finished"]
    assert len(finished) == len(set(finished)) == FAST["candidates"]
    assert events[-1]["type"] == "finished"
    for stream in (tmp_path / "candidates").glob("*/events.jsonl"):
        seqs = [e["seq"] for e in read_events(stream)]
        assert seqs == list(range(1, len(seqs) + 1))


def test_cancel_stops_submitting(demo, tmp_path):
    distributed.start(tmp_path, demo, preset="tiny", overrides=FAST, workers=2)
    sent: list[dict] = []
    assert distributed.advance(tmp_path, sent.append) == "running" and len(sent) == 2
    (tmp_path / "cancel").touch()
    assert distributed.run_candidate(tmp_path, sent[0], "w") == "cancelled"
    more: list[dict] = []
    assert distributed.advance(tmp_path, more.append) == "cancelled" and more == []
    assert distributed.advance(tmp_path, more.append) == "cancelled" and more == []
    events = read_events(tmp_path / "events.jsonl")
    assert [e["type"] for e in events].count("cancelled") == 1
    assert events[-1]["type"] == "cancelled"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_a_finish_already_running_is_not_started_twice_and_held_candidates_are_seen(tmp_path):
    """``finish`` under a lock another live holder has returns None at once (a re-sent finish
    message never runs the fine stage twice); ``training_candidates`` names the candidate
    folders whose lock a live process holds."""
    import fcntl

    assert distributed.training_candidates(tmp_path) == []
    (tmp_path / "candidates" / "coarse-a").mkdir(parents=True)
    (tmp_path / "candidates" / "coarse-b").mkdir(parents=True)
    with open(tmp_path / "finish.lock", "a+") as fine, \
            open(tmp_path / "candidates" / "coarse-b" / "lock", "a+") as cand:
        fcntl.flock(fine, fcntl.LOCK_EX)
        fcntl.flock(cand, fcntl.LOCK_EX)
        assert distributed.finish(tmp_path) is None  # no settings needed: it never started
        assert distributed.training_candidates(tmp_path) == ["coarse-b"]
    assert distributed.training_candidates(tmp_path) == []


def test_added_sinks_see_every_event_and_the_rewinds_of_their_stream(tmp_path, demo):
    seen: dict[str, list] = {}

    class Sink:
        def __init__(self, stream):
            self.stream = stream

        def __call__(self, event):
            seen.setdefault(self.stream, []).append(event["seq"])

        def rewind(self, seq):
            seen.setdefault(self.stream, []).append(("rewind", seq))

    def sinks(stream):
        return [Sink(stream)]

    distributed.start(tmp_path, demo, preset="tiny", overrides={**FAST, "candidates": 1}, workers=1,
                      meta={"run_id": 7})
    assert distributed.SearchFolder(tmp_path).settings["meta"] == {"run_id": 7}
    sent: list[dict] = []
    assert distributed.advance(tmp_path, sent.append, sinks=sinks) == "running"
    assert distributed.run_candidate(tmp_path, sent[0], "w1@h", sinks=sinks) == "done"
    assert distributed.advance(tmp_path, sent.append, sinks=sinks) == "coarse_done"
    stage = sent[0]["stage"]
    for stream, path in (("search", tmp_path / "events.jsonl"),
                         (stage, tmp_path / "candidates" / stage / "events.jsonl")):
        seqs = [s for s in seen[stream] if not isinstance(s, tuple)]
        assert seqs[-len(read_events(path)):] == [e["seq"] for e in read_events(path)]
        assert seen[stream][0] == ("rewind", 0)
    result = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert result["details"]["worker"] == "w1@h"
