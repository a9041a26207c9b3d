"""Event sinks: a JSON-lines file, a terminal progress bar, and an in-memory list."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from nasengine.events.types import (
    CANCELLED,
    CHECKPOINT,
    FAILED,
    FINISHED,
    RUN_STARTED,
    STEP,
    TERMINAL_TYPES,
    VALIDATION,
)

Event = dict[str, Any]


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """Events of a JSON-lines file in order; a torn last line (crash mid-write) is skipped."""
    events = []
    p = Path(path)
    if not p.exists():
        return events
    with p.open("r", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


class JsonLinesSink:
    """Appends one JSON object per line to ``path``.

    Each line is flushed at once; ``os.fsync`` runs on checkpoint and terminal events and at
    most every ``fsync_interval`` seconds otherwise ("fsync-light"). ``rewind(seq)`` rewrites the
    file (temp file + rename) keeping only events with ``seq`` <= the given one.
    """

    _SYNC_TYPES = frozenset({CHECKPOINT}) | TERMINAL_TYPES

    def __init__(self, path: str | os.PathLike[str], *, fsync_interval: float = 5.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync_interval = fsync_interval
        self._fh: TextIO | None = None
        self._last_sync = time.monotonic()

    def _open(self) -> TextIO:
        if self._fh is None or self._fh.closed:
            self._fh = self.path.open("a", encoding="utf-8")
        return self._fh

    def __call__(self, event: Event) -> None:
        fh = self._open()
        fh.write(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")
        fh.flush()
        now = time.monotonic()
        if event.get("type") in self._SYNC_TYPES or now - self._last_sync >= self.fsync_interval:
            os.fsync(fh.fileno())
            self._last_sync = now

    def rewind(self, seq: int) -> None:
        self.close()
        if not self.path.exists():
            return
        kept = [e for e in read_events(self.path) if int(e.get("seq", 0)) <= seq]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for event in kept:
                fh.write(json.dumps(event, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        self._fh = None


class ListSink(list):
    """Keeps events in memory (tests, notebooks); supports ``rewind``."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def rewind(self, seq: int) -> None:
        self[:] = [e for e in self if e["seq"] <= seq]

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self if e["type"] == type_]


def _label(event: Event, default: str = "step") -> str:
    """``phase``, prefixed by the stage (and candidate) when a run has several stages."""
    phase = event.get("phase") or default
    stage = event.get("stage")
    if stage and stage != "main":
        candidate = event.get("candidate")
        return f"{stage}{f' [{candidate}]' if candidate else ''} {phase}"
    return phase


class ProgressBarSink:
    """A tqdm progress bar on stderr driven by ``step`` events (``step``/``total_steps``).

    tqdm shows rate and ETA; the postfix shows the latest losses and validation Dice. Other
    events (checkpoint, validation, end of run) are printed as one line above the bar. When
    the stream is not a terminal (logs, Docker), tqdm stays silent and a plain status line
    with the ETA is written at every tenth of the run instead.
    """

    def __init__(self, stream: TextIO | None = None, *, desc: str | None = None,
                 disable: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.desc = desc
        self.disable = disable
        self._bar = None
        self._postfix: dict[str, str] = {}
        self._started: tuple[float, int] | None = None

    def _ensure_bar(self, event: Event):
        from tqdm.auto import tqdm

        total = event.get("total_steps")
        if self._bar is None or (total is not None and self._bar.total != total):
            self._close_bar()
            self._bar = tqdm(total=total, file=self.stream, desc=self.desc or _label(event),
                             unit="step", dynamic_ncols=True, disable=self.disable,
                             initial=max(0, int(event.get("step", 1)) - 1))
        return self._bar

    def _write(self, text: str) -> None:
        if self.disable:
            return
        from tqdm.auto import tqdm

        tqdm.write(text, file=self.stream)

    def __call__(self, event: Event) -> None:
        kind = event.get("type")
        if kind == RUN_STARTED:
            self._close_bar()
            resumed = event.get("resumed_from_step")
            self._write(f"{_label(event, 'run')}: {event.get('total_steps')} steps on "
                        f"{event.get('device')}" + (f", resumed at step {resumed}"
                                                    if resumed else ""))
        elif kind == STEP and event.get("total_steps"):
            bar = self._ensure_bar(event)
            losses = event.get("losses") or {}
            for key in ("seg", "arch"):
                if losses.get(key) is not None:
                    self._postfix[key] = f"{losses[key]:.3f}"
            if event.get("phase"):
                bar.set_description(self.desc or _label(event), refresh=False)
            bar.set_postfix(self._postfix, refresh=False)
            bar.update(int(event["step"]) - bar.n)
            if bar.disable and self.disable is None:
                self._plain_status(event)
        elif kind == VALIDATION:
            if event.get("mean_dice") is not None:
                self._postfix["dice"] = f"{event['mean_dice']:.3f}"
            dice = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -"
                             for k, v in (event.get("dice") or {}).items())
            self._write(f"validation at step {event.get('step')}: {dice}")
        elif kind == CHECKPOINT:
            pass
        elif kind in (FINISHED, CANCELLED, FAILED):
            self._close_bar()
            if kind == CANCELLED:
                self._write(f"cancelled at step {event.get('step')}; resume with --resume")
            # a failure is reported by whoever catches the exception (the CLI: one line)

    def _plain_status(self, event: Event) -> None:
        step, total = int(event["step"]), int(event["total_steps"])
        now = time.monotonic()
        if self._started is None:
            self._started = (now, step - 1)
        every = max(1, total // 10)
        if step % every and step != total:
            return
        t0, s0 = self._started
        rate = (now - t0) / max(1, step - s0)
        eta = int(rate * (total - step))
        losses = " ".join(f"{k} {v}" for k, v in self._postfix.items())
        self.stream.write(f"{_label(event)} {step}/{total} {losses} "
                          f"eta {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}\n")
        self.stream.flush()

    def rewind(self, seq: int) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        self._started = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()
