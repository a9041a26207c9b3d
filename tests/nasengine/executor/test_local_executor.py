"""The candidate executor protocol, the local sequential executor and the event-driven driver,
with a real (cheap) runner: no training, the runner computes a metric from the genotype."""
from __future__ import annotations

import pytest

from nasengine.events import Cancelled
from nasengine.executor import (
    CandidateExecutor,
    CandidateResult,
    CandidateSpec,
    LocalExecutor,
    drive,
    fill_slots,
)


def spec(n: int) -> CandidateSpec:
    return CandidateSpec(candidate_id=f"id{n}", genotype={"n": n}, train_config={},
                         stage=f"cand-{n}")


class ScoringRunner:
    """Scores a candidate by its number; fails on ``fail``; raises Cancelled once on
    ``cancel_at``."""

    def __init__(self, fail=(), cancel_at=None):
        self.ran: list[str] = []
        self.fail, self.cancel_at = set(fail), cancel_at

    def __call__(self, s: CandidateSpec) -> CandidateResult:
        if s.candidate_id == self.cancel_at:
            self.cancel_at = None
            raise Cancelled(0, "nowhere")
        self.ran.append(s.candidate_id)
        if s.candidate_id in self.fail:
            raise RuntimeError("out of memory")
        return CandidateResult(s.candidate_id, s.genotype["n"] / 10)


class CountingSource:
    """Proposes ``total`` candidates in order; remembers what came back, in order."""

    def __init__(self, total: int):
        self.total, self.next_n = total, 0
        self.running: dict[str, CandidateSpec] = {}
        self.finished: list[tuple[str, float | None, bool]] = []

    def in_flight(self):
        return list(self.running.values())

    def next_candidate(self):
        if self.next_n >= self.total:
            return None
        s = spec(self.next_n)
        self.next_n += 1
        self.running[s.candidate_id] = s
        return s

    def on_result(self, result):
        if self.running.pop(result.candidate_id, None) is not None:
            self.finished.append((result.candidate_id, result.metric, result.ok))

    @property
    def done(self):
        return not self.running and self.next_n >= self.total


def test_local_executor_satisfies_the_protocol_and_runs_one_at_a_time():
    runner = ScoringRunner()
    executor = LocalExecutor(runner)
    assert isinstance(executor, CandidateExecutor)
    assert executor.idle_slots() == 1
    executor.submit(spec(1))
    assert executor.idle_slots() == 0
    executor.submit(spec(1))  # the same id again: nothing new
    assert [r.metric for r in executor.results()] == [0.1]
    executor.submit(spec(1))  # finished already: not run again
    assert executor.results() == [] and runner.ran == ["id1"]


def test_drive_submits_while_slots_are_free_and_records_every_result_once():
    source, runner = CountingSource(5), ScoringRunner()
    drive(source, LocalExecutor(runner, slots=2))
    assert runner.ran == [f"id{n}" for n in range(5)]
    assert [f for f, _, _ in source.finished] == runner.ran
    assert source.done


def test_a_failing_candidate_is_a_failed_result_and_the_search_goes_on():
    source, runner = CountingSource(3), ScoringRunner(fail={"id1"})
    drive(source, LocalExecutor(runner))
    assert source.finished == [("id0", 0.0, True), ("id1", None, False), ("id2", 0.2, True)]


def test_cancel_propagates_with_the_candidate_still_pending_and_resumes_by_resubmission():
    source, runner = CountingSource(3), ScoringRunner(cancel_at="id1")
    with pytest.raises(Cancelled):
        drive(source, LocalExecutor(runner))
    assert [c.candidate_id for c in source.in_flight()] == ["id1"]
    drive(source, LocalExecutor(runner))  # a new process: in-flight ones are submitted first
    assert [f for f, _, _ in source.finished] == ["id0", "id1", "id2"]


def test_fill_slots_stops_at_capacity_and_cancel_empties_the_executor():
    source, executor = CountingSource(9), LocalExecutor(ScoringRunner(), slots=3)
    assert fill_slots(source, executor) == 3 and executor.idle_slots() == 0
    executor.cancel("id0")
    assert executor.idle_slots() == 1
    executor.cancel()
    assert executor.idle_slots() == 0 and executor.results() == []
    with pytest.raises(RuntimeError, match="cancelled"):
        executor.submit(spec(7))
