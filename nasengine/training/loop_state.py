"""``LoopState``: what the search loop and the from-scratch trainer share.

One object per running loop (a *stage* of a run) holds the step counter and every stateful
part (network, optimisers, AMP scalers, loaders). The base class turns them into one
checkpoint dict and back, writes the stage's checkpoint file and emits its ``checkpoint``
event, tags every event with the stage (and candidate), computes the overall ``progress``,
and handles a cancel between steps.

The reporter is owned by the run (``nasengine.api``), never by a loop: a loop never rewinds
it, so a method can run several loops one after another on one event stream.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasengine.events import Cancelled, CancelToken, Reporter
from nasengine.events.types import CANCELLED, CHECKPOINT, FINISHED, RUN_STARTED, STEP
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import memory_usage, reset_peak_memory


def _state_of(part: Any) -> Any:
    """``part.state_dict()``, or None for a missing part or one without state."""
    if part is None or not callable(getattr(part, "state_dict", None)):
        return None
    return part.state_dict()


def _load_into(part: Any, state: Any) -> None:
    """Load ``state`` into ``part``; None and ``{}`` (a disabled GradScaler) load nothing."""
    if part is None or state is None or (isinstance(state, Mapping) and not state):
        return
    if callable(getattr(part, "load_state_dict", None)):
        part.load_state_dict(state)


class LoopState:
    """Base of a resumable training loop.

    Subclasses set ``kind`` (stored in the checkpoint and checked on restore) and return their
    stateful parts from ``components()``; ``extra_state()`` / ``restore_extra()`` carry plain
    values that are not objects with ``state_dict()``.

    Args:
        schedule: has ``total_steps`` and ``lr(step: int) -> float``.
        reporter: the run's reporter (never rewound here).
        checkpoint_dir: the run's checkpoint directory; this stage writes
            ``checkpoint.stage_path(checkpoint_dir, stage)``.
        stage: the stage name (``main`` = ``checkpoint.pt``), carried by every event.
        candidate: optional candidate id carried by every event (C2FNAS candidates).
        device: where the loop computes.
        amp: mixed precision on (already resolved: only on CUDA).
        progress_span: ``(start, end)`` fractions of the whole run this stage covers; step
            events carry ``progress = start + (end - start) * step / total_steps``.
    """

    kind: ClassVar[str] = ""

    def __init__(self, *, schedule: Any, reporter: Reporter, checkpoint_dir: str | Path,
                 stage: str = ckpt.DEFAULT_STAGE, candidate: str | None = None,
                 device: torch.device, amp: bool,
                 progress_span: tuple[float, float] = (0.0, 1.0)):
        self.schedule = schedule
        self.reporter = reporter
        self.stage = ckpt.check_stage_name(stage)
        self.candidate = None if candidate is None else str(candidate)
        self.checkpoint_path = ckpt.stage_path(checkpoint_dir, stage)
        self.device, self.amp = device, bool(amp)
        start, end = (float(v) for v in progress_span)
        if not 0.0 <= start <= end <= 1.0:
            raise ValueError(f"progress_span must satisfy 0 <= start <= end <= 1, got "
                             f"{progress_span!r}")
        self.progress_span = (start, end)
        self.step = 0
        self.resumed_from: int | None = None

    # -- schedule ---------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return int(self.schedule.total_steps)

    def lr(self, step: int) -> float:
        """Weight learning rate of the 0-based ``step`` (the schedule's shape)."""
        return float(self.schedule.lr(step))

    @property
    def complete(self) -> bool:
        return self.step >= self.total_steps

    def progress(self) -> float:
        """Overall fraction of the run done after the current step."""
        start, end = self.progress_span
        total = self.total_steps
        return end if total <= 0 else start + (end - start) * min(self.step, total) / total

    # -- state ------------------------------------------------------------------------------
    def components(self) -> dict[str, Any]:
        """Stateful parts by checkpoint key (objects with ``state_dict``; None allowed)."""
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def restore_extra(self, state: dict[str, Any]) -> None:
        pass

    def state(self, reporter_seq: int) -> dict[str, Any]:
        """The checkpoint dict: parts, RNG states, step and the reporter ``seq`` to resume at."""
        out: dict[str, Any] = {"kind": self.kind, "stage": self.stage,
                               "candidate": self.candidate, "step": self.step,
                               "reporter_seq": int(reporter_seq)}
        for name, part in self.components().items():
            out[name] = _state_of(part)
        out["rng"] = ckpt.capture_rng()
        out.update(self.extra_state())
        return out

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"{self.checkpoint_path.name} is not a {self.kind} checkpoint "
                             f"(it holds {state.get('kind')!r})")
        for name, part in self.components().items():
            _load_into(part, state.get(name))
        ckpt.restore_rng(state["rng"])
        self.step = int(state["step"])
        self.restore_extra(state)

    # -- events -----------------------------------------------------------------------------
    def emit(self, type: str, **payload: Any) -> dict[str, Any]:
        """Emit through the run's reporter with this loop's ``stage`` (and ``candidate``)."""
        tags: dict[str, Any] = {"stage": self.stage}
        if self.candidate is not None:
            tags["candidate"] = self.candidate
        return self.reporter.emit(type, **tags, **payload)

    def begin(self, resume: bool, *, phase: str, **info: Any) -> bool:
        """Start the loop: reset the CUDA peak, restore the stage's checkpoint when resuming.

        Emits ``run_started`` (``phase``, ``total_steps``, ``resumed_from_step`` and ``info``)
        unless the stage was already complete in its checkpoint: a completed stage of a
        resumed run emitted all its events before, so it adds none.

        Returns:
            True when the loop has steps left to run.
        """
        reset_peak_memory(self.device)
        if resume and self.checkpoint_path.exists():
            self.restore(ckpt.load(self.checkpoint_path))  # CPU; load_state_dict moves it
            self.resumed_from = self.step
        if self.resumed_from is not None and self.complete:
            return False
        self.emit(RUN_STARTED, phase=phase, total_steps=self.total_steps,
                  resumed_from_step=self.resumed_from, **info)
        return True

    def emit_step(self, *, phase: str, losses: Mapping[str, float], lrs: Mapping[str, float],
                  metrics: Mapping[str, Any] | None, seconds: float, **extra: Any) -> None:
        """The ``step`` event of the step just done (``self.step`` already counts it)."""
        memory, memory_kind = memory_usage(self.device)
        self.emit(STEP, step=self.step, total_steps=self.total_steps, progress=self.progress(),
                  phase=phase, losses=dict(losses), lrs=dict(lrs), metrics=dict(metrics or {}),
                  memory_bytes=memory, memory_kind=memory_kind, seconds=seconds, **extra)

    def save_checkpoint(self) -> Path:
        """Save with the seq the following ``checkpoint`` event will carry, then emit it.

        A run resumed from this checkpoint rewinds to that event, so the event stays and
        anything after it (e.g. ``cancelled``) is dropped.
        """
        ckpt.save(self.checkpoint_path, self.state(self.reporter.seq + 1))
        self.emit(CHECKPOINT, step=self.step, path=str(self.checkpoint_path))
        return self.checkpoint_path

    def stop_if_cancelled(self, cancel: CancelToken) -> None:
        """Between steps: on cancel, checkpoint, emit ``cancelled`` and raise ``Cancelled``."""
        if cancel.is_cancelled():
            path = self.save_checkpoint()
            self.emit(CANCELLED, step=self.step, checkpoint=str(path))
            raise Cancelled(self.step, str(path))

    def should_checkpoint(self, every: int) -> bool:
        """A periodic checkpoint after this step (the end has its own)."""
        return bool(every) and self.step % every == 0 and not self.complete

    def end(self, *, finished: bool, **payload: Any) -> None:
        """After the last step: the final checkpoint (unless restored complete), then
        ``finished`` with ``payload`` when this loop ends the run."""
        if self.resumed_from is None or self.resumed_from < self.total_steps:
            self.save_checkpoint()
        if finished:
            self.emit(FINISHED, **payload)
