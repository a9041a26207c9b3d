"""The candidate executor protocol: how a search hands candidate networks to workers.

A *candidate* is a genotype plus its training settings under a stable id (the genotype's
canonical hash): submitting the same id twice runs it once. A driver (a strategy such as C2FNAS's
Algorithm 1) submits while ``idle_slots() > 0`` and reacts to each ``CandidateResult`` as it
arrives; nothing waits for a batch. Implementations: ``LocalExecutor`` (in-process, sequential:
the CLI and the tests) and, in the web app, a Celery one (one ``gpu``-queue task per candidate).
No implementation here imports anything of the web app.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["CandidateSpec", "CandidateResult", "CandidateExecutor"]


@dataclasses.dataclass(frozen=True)
class CandidateSpec:
    """One candidate to train.

    Attributes:
        candidate_id: stable id (the genotype's canonical hash); the idempotency key.
        genotype: the architecture (a version-2 genotype document).
        train_config: JSON-able training settings (a ``RetrainConfig``-like dict).
        stage: checkpoint stage name of its training (e.g. ``coarse-<id[:16]>``).
        meta: JSON-able bookkeeping passed through to the result (cluster, reason, ...).
    """

    candidate_id: str
    genotype: Mapping[str, Any]
    train_config: Mapping[str, Any]
    stage: str
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """What a finished candidate gives back.

    Attributes:
        candidate_id: the spec's id.
        metric: the validation metric (mean foreground Dice), None when undefined or failed.
        ok: False when training failed (``error`` says why).
        details: JSON-able result (per-class Dice, seconds, worker, ...).
    """

    candidate_id: str
    metric: float | None
    ok: bool = True
    error: str | None = None
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@runtime_checkable
class CandidateExecutor(Protocol):
    """Runs candidates; the driver never blocks on one candidate while slots are free."""

    def idle_slots(self) -> int:
        """How many more candidates may be submitted now."""

    def submit(self, spec: CandidateSpec) -> None:
        """Start ``spec`` (a no-op for an id already running or finished)."""

    def results(self) -> Iterable[CandidateResult]:
        """Results that arrived since the last call (blocking only when every slot is busy
        and nothing has arrived: a local executor runs a candidate here)."""

    def cancel(self, candidate_id: str | None = None) -> None:
        """Cancel one candidate, or all of them (None)."""
