"""Run events: stored first (the source of truth), then sent to the run's Channels group.

Group ``run-<id>`` gets ``{"type": "run.event", "event": {...}}`` for each engine event,
``{"type": "run.rewind", "seq": N}`` when a resumed run drops events after ``N``, and
``{"type": "run.status", "run": {...}}`` when the status changes.
"""
from __future__ import annotations

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from .models import Run, RunEvent

log = logging.getLogger(__name__)


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


class LostClaim(Exception):
    """Another worker has taken this run over: stop without touching it."""


def _send(run_id: int, message: dict) -> None:
    """Never fails the caller: the browser replays stored events after a reconnect."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(run_id), message)
    except Exception:
        log.warning("Could not send a message of run %s to the channel layer", run_id, exc_info=True)


def status_payload(run: Run) -> dict:
    model = getattr(run, "trained_model", None) if run.kind == Run.Kind.RETRAIN else None
    return {
        "id": run.pk, "status": run.status, "error": run.error, "best_mean_dice": run.best_mean_dice,
        "cancel_requested": run.cancel_requested, "attempts": run.attempts,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "model_id": model.pk if model is not None else None,
    }


def run_changed(run: Run) -> None:
    _send(run.pk, {"type": "run.status", "run": status_payload(run)})


def _progress(run: Run, event: dict) -> list[str]:
    kind = event["type"]
    fields: list[str] = []
    if kind in ("step", "run_started") and event.get("total_steps"):
        run.progress = {
            "step": int(event.get("step") or run.progress.get("step") or 0),
            "total_steps": int(event["total_steps"]),
            "phase": event.get("phase") or run.progress.get("phase"),
        }
        fields.append("progress")
    if kind == "validation" and event.get("mean_dice") is not None:
        mean = float(event["mean_dice"])
        if run.best_mean_dice is None or mean > run.best_mean_dice:
            run.best_mean_dice = mean
            fields.append("best_mean_dice")
    return fields


class RunEventSink:
    """Reporter sink of a task: stores each event under the run's claim, then broadcasts it."""

    def __init__(self, run_id: int, claim_token: str):
        self.run_id = run_id
        self.claim_token = claim_token

    def __call__(self, event: dict) -> None:
        payload = {k: v for k, v in event.items() if k not in ("seq", "type", "time")}
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=self.run_id).first()
            if run is None or run.claim_token != self.claim_token:
                raise LostClaim(f"run {self.run_id} is no longer held by this worker")
            RunEvent.objects.create(run_id=self.run_id, seq=event["seq"], type=event["type"],
                                    time=float(event.get("time") or time.time()), payload=payload)
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["heartbeat_at", *_progress(run, event)])
        _send(self.run_id, {"type": "run.event", "event": event})

    def rewind(self, seq: int) -> None:
        """A resumed run continues after ``seq``: drop the stored events it will emit again."""
        deleted, _ = RunEvent.objects.filter(run_id=self.run_id, seq__gt=seq).delete()
        if deleted:
            log.info("Run %s resumes after event %s: dropped %s later events", self.run_id, seq, deleted)
        _send(self.run_id, {"type": "run.rewind", "seq": int(seq)})
