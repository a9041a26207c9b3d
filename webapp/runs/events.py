"""Run events: stored first (the source of truth), then sent to the run's Channels group.

Group ``run-<id>`` gets ``{"type": "run.event", "event": {...}}`` for each engine event,
``{"type": "run.rewind", "seq": N}`` when a resumed run drops events after ``N``, and
``{"type": "run.status", "run": {...}}`` when the status changes.

Events of every type are stored and sent alike: the core types (``step``, ``architecture`` ...)
and a method's namespaced ones (``scnas.sampled_ops``), with whatever they carry (``stage``,
``candidate``, ``progress``, ``metrics`` ...). An event too big for a channel-layer message
(an architecture snapshot of a large search space) is sent as a stub ``{"seq", "type",
"time", "layer_stub": true}``; the consumer reads the whole event from the database.
"""
from __future__ import annotations

import json
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from .models import Run, RunEvent

log = logging.getLogger(__name__)

#: Largest event (JSON bytes) sent whole through the channel layer; channels-redis and the
#: ASGI spec expect messages well under 1 MB, and one run may send many per second.
MAX_LAYER_EVENT_BYTES = 64 * 1024


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


class LostClaim(Exception):
    """Another worker has taken this run over: stop without touching it."""


class EventStreamRewound(RuntimeError):
    """The engine asked to drop stored events outside a resume (a run keeps its history)."""


def _send(run_id: int, message: dict) -> None:
    """Never fails the caller: the browser replays stored events after a reconnect."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(run_id), message)
    except Exception:
        log.warning("Could not send a message of run %s to the channel layer", run_id, exc_info=True)


def layer_event(event: dict) -> dict:
    """The event as sent through the channel layer: whole, or a stub when it is too big."""
    if len(json.dumps(event, separators=(",", ":"))) <= MAX_LAYER_EVENT_BYTES:
        return event
    return {"seq": event["seq"], "type": event["type"], "time": event.get("time"), "layer_stub": True}


def status_payload(run: Run) -> dict:
    model = getattr(run, "trained_model", None) if run.kind == Run.Kind.RETRAIN else None
    return {
        "id": run.pk, "status": run.status, "error": run.error, "best_mean_dice": run.best_mean_dice,
        "cancel_requested": run.cancel_requested, "attempts": run.attempts,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "model_id": model.pk if model is not None else None,
        "progress": run.progress or {},
    }


def run_changed(run: Run) -> None:
    _send(run.pk, {"type": "run.status", "run": status_payload(run)})


# ----------------------------------------------------------------------------- progress

def _fraction(event: dict, step: int | None, total: int | None) -> float | None:
    """Overall progress 0..1: the event's own ``progress`` (a method that chains stages knows
    it), else step / total_steps of the (only) stage."""
    value = event.get("progress")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return min(1.0, max(0.0, float(value)))
    if step is not None and total:
        return min(1.0, max(0.0, step / total))
    return None


def next_progress(previous: dict, event: dict) -> dict | None:
    """The run's ``progress`` after ``event``, or None when the event says nothing about it.

    Keys: ``step``, ``total_steps``, ``phase``, ``stage``, ``candidate`` (as the latest step
    event gave them), ``fraction`` (overall, 0..1) and ``eta_seconds`` (from the rate since
    ``eta_basis``, the time and fraction of this attempt's or stage's first ``run_started``).
    """
    kind = event["type"]
    if kind not in ("step", "run_started"):
        return None
    if not event.get("total_steps") and event.get("progress") is None:
        return None
    step = event.get("step")
    if step is None:  # a resumed attempt's run_started says where it resumed
        step = previous.get("step") if kind == "step" else event.get("resumed_from_step")
    step = int(step or 0)
    total = int(event["total_steps"]) if event.get("total_steps") else previous.get("total_steps")
    fraction = _fraction(event, step, total)
    now = float(event.get("time") or time.time())
    basis = previous.get("eta_basis")
    if kind == "run_started" or not basis:
        basis = {"time": now, "fraction": fraction or 0.0}
    eta = None
    if fraction is not None and fraction > basis["fraction"] and now > basis["time"]:
        rate = (fraction - basis["fraction"]) / (now - basis["time"])
        eta = round((1.0 - fraction) / rate, 1)
    return {
        "step": step, "total_steps": total,
        "phase": event.get("phase") or previous.get("phase"),
        "stage": event.get("stage", previous.get("stage")),
        "candidate": event.get("candidate", previous.get("candidate")),
        "fraction": fraction, "eta_seconds": eta, "eta_basis": basis,
    }


def _apply(run: Run, event: dict) -> list[str]:
    """Update the run's summary fields from one event; returns the fields changed."""
    fields: list[str] = []
    progress = next_progress(run.progress or {}, event)
    if progress is not None:
        run.progress = progress
        fields.append("progress")
    if event["type"] == "validation" and event.get("mean_dice") is not None:
        mean = float(event["mean_dice"])
        if run.best_mean_dice is None or mean > run.best_mean_dice:
            run.best_mean_dice = mean
            fields.append("best_mean_dice")
    return fields


# ----------------------------------------------------------------------------- the sink

class RunEventSink:
    """Reporter sink of a task: stores each event under the run's claim, then broadcasts it.

    ``may_rewind``: this attempt resumes (or restarts) the run, so one rewind before its first
    event may drop stored events after the given seq. Any other rewind that would drop stored
    events raises :class:`EventStreamRewound`: a fresh run never deletes its history.
    """

    def __init__(self, run_id: int, claim_token: str, *, may_rewind: bool = False):
        self.run_id = run_id
        self.claim_token = claim_token
        self.may_rewind = may_rewind
        self.emitted = 0

    def __call__(self, event: dict) -> None:
        payload = {k: v for k, v in event.items() if k not in ("seq", "type", "time")}
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=self.run_id).first()
            if run is None or run.claim_token != self.claim_token:
                raise LostClaim(f"run {self.run_id} is no longer held by this worker")
            RunEvent.objects.create(run_id=self.run_id, seq=event["seq"], type=event["type"],
                                    time=float(event.get("time") or time.time()), payload=payload)
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["heartbeat_at", *_apply(run, event)])
        self.emitted += 1
        _send(self.run_id, {"type": "run.event", "event": layer_event(event)})

    def rewind(self, seq: int) -> None:
        """Continue after ``seq``: drop the stored events a resumed run will emit again."""
        later = RunEvent.objects.filter(run_id=self.run_id, seq__gt=seq)
        if not later.exists():
            return  # nothing to drop (a fresh start at 0, or a resume at the newest event)
        if not self.may_rewind or self.emitted:
            raise EventStreamRewound(
                f"run {self.run_id}: the engine rewound its event stream to {seq} outside a resume; "
                "stored events are kept (a run's loops must not rewind)"
            )
        self.may_rewind = False
        deleted, _ = later.delete()
        log.info("Run %s resumes after event %s: dropped %s later events", self.run_id, seq, deleted)
        _send(self.run_id, {"type": "run.rewind", "seq": int(seq)})
