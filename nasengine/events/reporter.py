"""The engine's reporter: numbers events and hands them to sinks.

A sink is any callable taking the event dict. A sink may also offer ``rewind(seq)`` (drop
events with a larger ``seq``) and ``close()``.
"""
from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nasengine.events.types import is_event_type

Event = dict[str, Any]
Sink = Callable[[Event], Any]


def plain(value: Any, ndigits: int | None = None) -> Any:
    """Turn tensors, numpy values, tuples and paths into JSON-able Python values.

    Non-finite floats become ``None`` (JSON has no NaN). ``ndigits`` rounds floats.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            return None
        return round(f, ndigits) if ndigits is not None else f
    if hasattr(value, "tolist") and callable(value.tolist):  # torch.Tensor, numpy arrays
        return plain(value.tolist(), ndigits)
    if isinstance(value, Mapping):
        return {str(k): plain(v, ndigits) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, ndigits) for v in value]
    if hasattr(value, "__fspath__"):
        return str(value)
    return str(value)


class Reporter:
    """Numbers events per run (``seq`` from 1) and passes them to sinks.

    >>> events = []
    >>> r = Reporter([events.append])
    >>> r.emit("step", step=1)["seq"]
    1
    """

    def __init__(self, sinks: Iterable[Sink] = (), *, clock: Callable[[], float] = time.time):
        self.sinks: list[Sink] = list(sinks)
        self._seq = 0
        self._clock = clock

    @property
    def seq(self) -> int:
        """Sequence number of the last event emitted (0 before the first)."""
        return self._seq

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, type: str, **payload: Any) -> Event:
        """Emit one event: ``{"seq", "type", "time", **payload}``; returns it.

        ``type`` is a core type (``EVENT_TYPES``) or a method's namespaced type
        ``"<method>.<name>"``; anything else raises ``ValueError`` (a typo never reaches the
        stored stream).
        """
        if not is_event_type(type):
            raise ValueError(f"unknown event type {type!r}: use a core type "
                             f"or a namespaced '<method>.<name>' type")
        self._seq += 1
        event: Event = {"seq": self._seq, "type": type, "time": self._clock()}
        event.update(plain(payload))
        for sink in self.sinks:
            sink(event)
        return event

    def rewind(self, seq: int) -> None:
        """Continue numbering after ``seq``; sinks drop every event with a larger ``seq``."""
        if seq < 0:
            raise ValueError("seq must be >= 0")
        self._seq = int(seq)
        for sink in self.sinks:
            rewind = getattr(sink, "rewind", None)
            if callable(rewind):
                rewind(self._seq)

    def close(self) -> None:
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                close()


class NullReporter(Reporter):
    """A reporter without sinks (events are numbered and dropped)."""

    def __init__(self) -> None:
        super().__init__(())
