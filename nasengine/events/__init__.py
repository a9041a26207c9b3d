"""Event stream of a run: Reporter, sinks (JSON lines, progress bar, list), cancel tokens."""
from nasengine.events.cancel import CallableCancelToken, Cancelled, CancelToken, FileCancelToken, as_cancel_token
from nasengine.events.reporter import NullReporter, Reporter, plain
from nasengine.events.sinks import JsonLinesSink, ListSink, ProgressBarSink, read_events
from nasengine.events.types import (
                                     ARCHITECTURE,
                                     CANCELLED,
                                     CHECKPOINT,
                                     EVENT_TYPES,
                                     FAILED,
                                     FINISHED,
                                     NAMESPACED_TYPE,
                                     RUN_STARTED,
                                     STEP,
                                     TERMINAL_TYPES,
                                     VALIDATION,
                                     is_event_type,
)

__all__ = [
    "Reporter", "NullReporter", "plain", "JsonLinesSink", "ListSink", "ProgressBarSink",
    "read_events", "CancelToken", "FileCancelToken", "CallableCancelToken", "Cancelled",
    "as_cancel_token", "RUN_STARTED", "STEP", "ARCHITECTURE", "VALIDATION", "CHECKPOINT",
    "FINISHED", "CANCELLED", "FAILED", "EVENT_TYPES", "TERMINAL_TYPES", "NAMESPACED_TYPE",
    "is_event_type",
]
