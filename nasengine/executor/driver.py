"""``drive``: the event-driven loop of a candidate search over any executor.

The source (a strategy wrapped with its bookkeeping, e.g. C2FNAS's coarse stage) proposes
candidates and records results; the driver submits while the executor has idle slots and hands
every result back the moment it arrives. A resumed source first re-submits the candidates its
saved state has in flight (idempotent by id: each resumes from its own checkpoint).
"""
from __future__ import annotations

from typing import Protocol

from .protocol import CandidateExecutor, CandidateResult, CandidateSpec

__all__ = ["CandidateSource", "drive", "fill_slots"]


class CandidateSource(Protocol):
    def in_flight(self) -> list[CandidateSpec]:
        """Candidates submitted and not finished (from the saved state after a resume)."""

    def next_candidate(self) -> CandidateSpec | None:
        """The next candidate (marked in flight and saved), or None: nothing to submit now."""

    def on_result(self, result: CandidateResult) -> None:
        """Record one finished candidate (and save); a duplicate is ignored."""

    @property
    def done(self) -> bool:
        """Nothing in flight and nothing left to propose."""


def fill_slots(source: CandidateSource, executor: CandidateExecutor) -> int:
    """Submit candidates while a slot is free; returns how many were submitted."""
    submitted = 0
    while executor.idle_slots() > 0:
        spec = source.next_candidate()
        if spec is None:
            break
        executor.submit(spec)
        submitted += 1
    return submitted


def drive(source: CandidateSource, executor: CandidateExecutor) -> None:
    """Run ``source`` to completion on ``executor`` (``Cancelled`` propagates)."""
    for spec in source.in_flight():
        executor.submit(spec)
    while not source.done:
        fill_slots(source, executor)
        results = list(executor.results())
        if not results and not source.done:
            raise RuntimeError("the executor returned no result while the search waits for "
                               "one (nothing pending on it)")
        for result in results:
            source.on_result(result)
