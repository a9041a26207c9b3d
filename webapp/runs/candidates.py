"""The Celery candidate executor of C2FNAS: one ``gpu``-queue task per candidate, and the
orchestration as short ``default``-queue tasks woken by each candidate's completion.

- ``c2fnas_advance(root)`` (default queue): ``distributed.advance`` (load the strategy state,
  record the results, fill the free slots with ``c2fnas_train_candidate`` messages, save) and
  exit; when the coarse stage is done it sends ``c2fnas_finish`` once. While candidates are in
  flight it also keeps one delayed wake-up pending (``stale_seconds``), so a candidate whose
  worker was killed is sent again even when no other completion comes.
- ``c2fnas_train_candidate(root, spec)`` (gpu queue, acks late): trains one candidate
  (resuming its own checkpoint), writes its result, then sends ``c2fnas_advance``.
- ``c2fnas_finish(root)`` (gpu queue): the fine stage and the final genotype.

No task waits on another's result (Celery forbids ``result.get()`` inside a task): completion
is a new message. A worker must import this module (``celery worker --include
webapp.runs.candidates``, or an import in ``webapp/runs/tasks.py``).

**Runs launched in the web app** (``start_run_search``, called by the worker runtime for a
C2FNAS search): the run's folder is the search folder, and its settings name the run
(``meta``: run id and folder key). Then every step also

- stores each event of every stream (the orchestration's and each candidate's) as a
  ``RunEvent`` of the run (``RunStreamSink``): the run's next ``seq``, the event's own fields
  (``stage``, ``candidate``, ...) plus ``origin = [stream, seq in that stream]`` (a list:
  the run page charts every number of a step event, and a list is no series); a stream that
  rewinds
  (a killed candidate resumed from its checkpoint, the orchestration's re-emitted
  ``cancelled``) drops its own later events and the run's later events close up, so every
  event is stored once and the seqs stay 1..N; the browser is told with a ``run.rewind``;
- keeps the run's heartbeat fresh (each event, each orchestration step);
- follows the run: ``cancel_requested`` cancels the search (``cancel_search``: queued
  candidates never start, training ones stop at their next step), and the run ends
  ``cancelled`` once no candidate is training any more; ``succeeded`` with the genotype when
  ``c2fnas_finish`` is done; ``failed`` with the reason when a step fails.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from celery import shared_task
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from nasengine.methods.c2fnas import distributed

from .events import _apply, _send, layer_event
from .models import Run, RunEvent

log = logging.getLogger(__name__)

Status = Run.Status

__all__ = ["start_search", "cancel_search", "c2fnas_advance", "c2fnas_train_candidate",
           "c2fnas_finish", "DISTRIBUTED_METHODS", "start_run_search", "RunStreamSink"]

#: Search methods whose web runs go through this executor instead of one worker.
DISTRIBUTED_METHODS = frozenset({"c2fnas"})


def _send_candidate(root: str, spec: dict[str, Any]) -> None:
    c2fnas_train_candidate.apply_async(args=[root, spec], queue="gpu")


def _wake_later(root: str, seconds: float) -> None:
    """Keep exactly one delayed ``advance`` pending (the liveness check of candidates)."""
    marker = Path(root) / "wake_due"
    now = time.time()
    if marker.exists():
        try:
            if float(marker.read_text() or 0) > now:
                return
        except ValueError:
            pass
    marker.write_text(str(now + seconds))
    c2fnas_advance.apply_async(args=[root], queue="default", countdown=seconds)


def _settings(root: str | Path) -> dict[str, Any] | None:
    path = Path(root) / "settings.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _run_id(settings: dict[str, Any] | None) -> int | None:
    run_id = ((settings or {}).get("meta") or {}).get("run_id")
    return int(run_id) if run_id is not None else None


# --------------------------------------------------------------------------- the run's events

class RunStreamSink:
    """Reporter sink of one stream of a web run's search: stores each event as the run's next
    ``RunEvent`` (under the run's row lock, so streams of several workers interleave without
    gaps), refreshes the heartbeat, then broadcasts it. A final run's history is frozen: a late
    event (a candidate stopping after the run was cancelled) is not stored.

    ``progress`` of ``step`` and ``run_started`` events is the run's overall fraction, kept
    monotonic: candidates trained at once each report their own place in the budget, and the
    bar must not jump back and forth between them (choice: the largest so far).
    """

    def __init__(self, run_id: int, stream: str, root: str | Path):
        self.run_id, self.stream, self.root = int(run_id), stream, Path(root)

    def __call__(self, event: dict) -> None:
        payload = {k: v for k, v in event.items() if k not in ("seq", "type", "time")}
        payload["origin"] = [self.stream, int(event["seq"])]
        when = float(event.get("time") or time.time())
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=self.run_id).first()
            if run is None or run.is_final:
                return
            if event["type"] in ("step", "run_started"):
                before = float((run.progress or {}).get("fraction") or 0.0)
                own = payload.get("progress")
                own = float(own) if isinstance(own, (int, float)) and not isinstance(own, bool) else before
                payload["progress"] = max(before, own)
            seq = (RunEvent.objects.filter(run_id=self.run_id).aggregate(m=Max("seq"))["m"] or 0) + 1
            RunEvent.objects.create(run_id=self.run_id, seq=seq, type=event["type"], time=when,
                                    payload=payload)
            message = {"seq": seq, "type": event["type"], "time": when, **payload}
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["heartbeat_at", *_apply(run, message)])
            cancel = run.cancel_requested
        _send(self.run_id, {"type": "run.event", "event": layer_event(message)})
        if cancel:
            _cancel_once(self.root)

    def rewind(self, seq: int) -> None:
        """Drop this stream's stored events after its ``seq``; the run's later events move up
        so the run's seqs stay contiguous."""
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=self.run_id).first()
            if run is None or run.is_final:
                return
            dropped = RunEvent.objects.filter(run_id=self.run_id, payload__origin__0=self.stream,
                                              payload__origin__1__gt=int(seq))
            first = dropped.aggregate(m=Min("seq"))["m"]
            if first is None:
                return
            count = dropped.delete()[0]
            # ascending: each event's new seq is below its old one and already free
            later = list(RunEvent.objects.filter(run_id=self.run_id, seq__gt=first).order_by("seq"))
            for new_seq, stored in enumerate(later, start=first):
                stored.seq = new_seq
                stored.save(update_fields=["seq"])
            moved = [stored.as_message() for stored in later]
        log.info("Run %s: stream %s rewound to %s; %s events dropped, %s renumbered",
                 self.run_id, self.stream, seq, count, len(moved))
        _send(self.run_id, {"type": "run.rewind", "seq": int(first) - 1})
        for message in moved:
            _send(self.run_id, {"type": "run.event", "event": layer_event(message)})


def _sinks(root: str | Path, settings: dict[str, Any] | None):
    """The sink factory of a web run's search (None for a search outside the web app)."""
    run_id = _run_id(settings)
    if run_id is None:
        return None
    return lambda stream: [RunStreamSink(run_id, stream, root)]


def _cancel_once(root: Path) -> None:
    if not (root / "cancel").exists():
        cancel_search(root)


# --------------------------------------------------------------------------- the run's status

def _end(run_id: int, status: str, *, error: str | None = None, genotype: dict | None = None) -> None:
    """Record the run's outcome under whatever claim it holds now (the search, not one worker
    process, holds it)."""
    from . import runtime

    token = Run.objects.filter(pk=run_id).values_list("claim_token", flat=True).first()
    if token:
        runtime.finish(run_id, token, status, error=error, genotype=genotype)


def _failure(exc: BaseException) -> str:
    from nasengine.config import ConfigError
    from nasengine.data import DataError

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, (ConfigError, DataError)):
        return first
    return f"Internal error: {first} (details in the worker's log)."


def _no_candidate_message(root: Path) -> str:
    errors = []
    for path in sorted((root / "results").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not doc.get("ok") and doc.get("error"):
            errors.append(doc["error"])
    first = f" The first error: {errors[0][:300]}" if errors else ""
    return ("Every candidate of the coarse stage failed, so there is no topology to refine; the "
            f"worker logs say why.{first}")


def _follow(run_id: int | None, root: Path) -> bool:
    """Before a step of a web run: False when the run is gone or over (its candidates are
    stopped); a requested cancel reaches the search here; the heartbeat is refreshed."""
    if run_id is None:
        return True
    row = Run.objects.filter(pk=run_id).values_list("status", "cancel_requested").first()
    if row is None or row[0] not in (Status.QUEUED, Status.RUNNING):
        if root.exists() and not (root / "cancel").exists() and not (root / "genotype.json").exists():
            (root / "cancel").touch()  # its candidates stop (a finished search has none)
        return False
    if row[1]:
        (root / "cancel").touch()
    Run.objects.filter(pk=run_id, status=Status.RUNNING).update(heartbeat_at=timezone.now())
    return True


# --------------------------------------------------------------------------- the tasks

@shared_task(name="webapp.runs.candidates.c2fnas_advance", acks_late=True, ignore_result=True)
def c2fnas_advance(root: str) -> str:
    settings = _settings(root)
    if settings is None:
        return "gone"  # the run (and its folder) was deleted
    run_id = _run_id(settings)
    if not _follow(run_id, Path(root)):
        return "ended"
    try:
        status = distributed.advance(root, lambda spec: _send_candidate(root, spec),
                                     sinks=_sinks(root, settings))
    except Exception as exc:
        if run_id is None:
            raise
        log.exception("C2FNAS search of run %s: the orchestration step failed", run_id)
        (Path(root) / "cancel").touch()  # its candidates stop
        _end(run_id, Status.FAILED, error=_failure(exc))
        return "failed"
    if status == "coarse_done":
        sent = Path(root) / "finish_sent"
        if not sent.exists():
            sent.touch()
            c2fnas_finish.apply_async(args=[root], queue="gpu")
    elif status == "running":
        _wake_later(root, float(settings["stale_seconds"]))
    elif status == "cancelled" and run_id is not None:
        if distributed.training_candidates(root):
            _wake_later(root, float(settings["stale_seconds"]))  # they stop at their next step
        else:
            _end(run_id, Status.CANCELLED)
    return status


@shared_task(bind=True, name="webapp.runs.candidates.c2fnas_train_candidate", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True)
def c2fnas_train_candidate(self, root: str, spec: dict[str, Any]) -> str:
    settings = _settings(root)
    if settings is None:
        return "gone"
    _follow(_run_id(settings), Path(root))
    status = distributed.run_candidate(root, spec, worker=self.request.hostname or "",
                                       sinks=_sinks(root, settings))
    c2fnas_advance.apply_async(args=[root], queue="default")
    return status


@shared_task(name="webapp.runs.candidates.c2fnas_finish", acks_late=True, ignore_result=True)
def c2fnas_finish(root: str) -> str:
    from nasengine.events import Cancelled

    settings = _settings(root)
    if settings is None:
        return "gone"
    run_id = _run_id(settings)
    if not _follow(run_id, Path(root)):
        return "ended"
    try:
        genotype = distributed.finish(root, sinks=_sinks(root, settings))
    except Cancelled:
        if run_id is not None:
            _end(run_id, Status.CANCELLED)
        return "cancelled"
    except Exception as exc:
        if run_id is None:
            raise
        log.exception("C2FNAS search of run %s: the fine stage failed", run_id)
        message = (_no_candidate_message(Path(root)) if "without one successful candidate" in str(exc)
                   else _failure(exc))
        _end(run_id, Status.FAILED, error=message)
        return "failed"
    if genotype is None:
        return "busy"  # another live worker is finishing it
    if run_id is not None:
        _end(run_id, Status.SUCCEEDED, genotype=genotype)
    return "finished"


# --------------------------------------------------------------------------- entry points

def start_search(root: str | Path, data_dir: str | Path, *, preset: str = "tiny",
                 overrides: dict[str, Any] | None = None, workers: int = 1,
                 stale_seconds: float = 120.0, device: str | None = None,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write a search folder and send its first ``advance``; returns the folder."""
    distributed.start(root, data_dir, preset=preset, overrides=overrides, workers=workers,
                      stale_seconds=stale_seconds, device=device, meta=meta)
    c2fnas_advance.apply_async(args=[str(root)], queue="default")
    return Path(root)


def cancel_search(root: str | Path) -> None:
    """Cancel the search and its candidates (running ones stop at their next step, queued
    ones do not start)."""
    (Path(root) / "cancel").touch()
    c2fnas_advance.apply_async(args=[str(root)], queue="default")


def search_slots() -> int:
    """How many candidates a web search keeps in flight: ``VOXELSEARCH_C2FNAS_SLOTS`` when set,
    else one per ``gpu``-queue worker connected now (the worker registry), at least 1.

    Choice: counted once, when the search starts; a worker that joins later still takes
    candidates (they share one queue) but the search does not widen for it.
    """
    import os

    from django.conf import settings

    configured = getattr(settings, "VOXELSEARCH_C2FNAS_SLOTS", None) or os.environ.get("VOXELSEARCH_C2FNAS_SLOTS")
    if configured:
        return max(1, int(configured))
    from webapp.common.workers import gpu_queue_workers

    return max(1, len(gpu_queue_workers()))


def owns_search(run: Run) -> bool:
    """True when the run's folder holds a search this run started (its settings name the run's
    id and folder key)."""
    meta = ((_settings(run.out_dir) or {}).get("meta") or {})
    return meta.get("run_id") == run.pk and meta.get("storage_key") == str(run.storage_key)


def start_run_search(run: Run) -> str:
    """Start (or, on a later attempt of the same run, pick up) the distributed search of a
    claimed C2FNAS run and return at once; the tasks above carry it to its end.

    Returns ``"started"`` or ``"attached"`` (the run's own search was running: one ``advance``
    re-sends whatever a dead worker had, and a lost fine stage is sent again).
    """
    from . import runtime

    root = run.out_dir
    if run.attempts > 1 and owns_search(run):
        if not (root / "genotype.json").exists():
            (root / "finish_sent").unlink(missing_ok=True)  # finish takes a lock: never twice
        (root / "wake_due").unlink(missing_ok=True)
        if not run.cancel_requested:
            # a cancelled run resumed: its stopped candidates resume from their checkpoints
            (root / "cancel").unlink(missing_ok=True)
        c2fnas_advance.apply_async(args=[str(root)], queue="default")
        return "attached"
    if root.exists() and any(root.iterdir()):
        aside = root.with_name(f"{root.name}.foreign-{int(time.time())}")
        log.warning("Run %s: its folder %s holds no search of this run; moved aside to %s",
                    run.pk, root, aside)
        shutil.move(str(root), str(aside))
    with transaction.atomic():  # an earlier attempt's events belong to no search now
        dropped = RunEvent.objects.filter(run_id=run.pk).delete()[0]
    if dropped:
        _send(run.pk, {"type": "run.rewind", "seq": 0})
    start_search(root, run.dataset.msd_dir, preset=run.preset, overrides=dict(run.config or {}),
                 workers=search_slots(),
                 stale_seconds=max(2.0, runtime.stale_after().total_seconds() / 2),
                 meta={"run_id": run.pk, "storage_key": str(run.storage_key)})
    return "started"
