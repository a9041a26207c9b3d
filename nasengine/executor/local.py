"""``LocalExecutor``: candidates trained in this process, one at a time (the CLI and tests).

It has ``slots`` (default 1) submission slots; ``results()`` trains the oldest submitted
candidate with the ``runner`` and returns its result. A ``Cancelled`` raised by the runner (the
run's cancel token) propagates to the driver untouched, with the candidate still pending, so a
resumed run submits it again and the runner resumes it from its own checkpoint.
"""
from __future__ import annotations

from collections.abc import Callable

from nasengine.events import Cancelled

from .protocol import CandidateResult, CandidateSpec

__all__ = ["LocalExecutor", "Runner"]

#: ``runner(spec) -> CandidateResult``: trains one candidate (resuming its own checkpoint).
Runner = Callable[[CandidateSpec], CandidateResult]


class LocalExecutor:
    """In-process, sequential executor.

    Args:
        runner: trains one candidate and returns its result; an exception other than
            ``Cancelled`` becomes a failed result (the search goes on).
        slots: how many candidates may be pending at once (they still run one by one).
    """

    def __init__(self, runner: Runner, slots: int = 1):
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.runner, self.slots = runner, int(slots)
        self.pending: list[CandidateSpec] = []
        self.finished: set[str] = set()
        self.cancelled = False

    def idle_slots(self) -> int:
        return 0 if self.cancelled else self.slots - len(self.pending)

    def submit(self, spec: CandidateSpec) -> None:
        if self.cancelled:
            raise RuntimeError("the executor was cancelled")
        if spec.candidate_id in self.finished or any(
                p.candidate_id == spec.candidate_id for p in self.pending):
            return
        self.pending.append(spec)

    def results(self) -> list[CandidateResult]:
        """Train the oldest pending candidate; ``[]`` when nothing is pending."""
        if not self.pending or self.cancelled:
            return []
        spec = self.pending[0]
        try:
            result = self.runner(spec)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed candidate, not a failed search
            result = CandidateResult(spec.candidate_id, None, ok=False,
                                     error=f"{type(exc).__name__}: {exc}")
        self.pending.pop(0)
        self.finished.add(spec.candidate_id)
        return [result]

    def cancel(self, candidate_id: str | None = None) -> None:
        if candidate_id is None:
            self.cancelled = True
            self.pending.clear()
        else:
            self.pending = [p for p in self.pending if p.candidate_id != candidate_id]
