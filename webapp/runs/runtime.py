"""The worker runtime of runs: claim, heartbeat, execute, finish, and re-queue of orphans.

The Celery tasks call this module; users never do (their commands are in ``services``).

A run is executed by whichever worker *claims* it: a compare-and-set of ``claim_token`` under
a row lock. A worker keeps its claim alive with a heartbeat; a redelivered or re-queued task
finds the run claimed with a fresh heartbeat and leaves it alone, or claimed with a stale
heartbeat (the worker died) and takes it over, resuming from the run's last checkpoint.

A run resumes only from files it wrote itself: its folder is its own (``Run.storage_key``),
a first attempt clears anything found there, and only a later attempt may resume, and only
from checkpoints the run's *ownership record* vouches for (``CheckpointOwnership``): after
each ``checkpoint`` event the record ``checkpoint-ownership.json`` (run id, folder key, the
attempt and claim token that wrote it, and each checkpoint file's SHA-256) is rewritten next to
the checkpoints. A later attempt loads a checkpoint only when the record names this run (id and
folder key as the database has them), was written by an earlier attempt of it, and the file's
digest matches; anything else (a file another run or a test left there, placeholder bytes, a
torn file) is moved aside into ``checkpoints-foreign/`` with a logged note, never loaded.

A C2FNAS search (``candidates.DISTRIBUTED_METHODS``) is not executed in the worker that claims
it: the runtime starts its distributed search (``candidates.start_run_search``) and returns;
the candidate executor's tasks carry the run to its end.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from . import candidates, engine
from .events import LostClaim, RunEventSink, run_changed
from .models import Run

log = logging.getLogger(__name__)

Status = Run.Status
#: A run whose worker was lost this often (killed, out of memory) since it was created or
#: last resumed by a user is given up.
MAX_ATTEMPTS = 3


def stale_after() -> timedelta:
    """How long a worker may stay silent before its run is taken to be orphaned (worker died)."""
    seconds = getattr(settings, "VOXELSEARCH_RUN_STALE_SECONDS", None) or int(os.environ.get("VOXELSEARCH_RUN_STALE_SECONDS", "120"))
    return timedelta(seconds=int(seconds))


# --------------------------------------------------------------------------------- claim

def claim(run_id: int, worker: str):
    """Take the run for this worker: returns ``(run, token)``, ``"busy"`` (held by a live
    worker) or None (nothing to do: gone, final, cancelled while queued, or given up)."""
    with transaction.atomic():
        run = Run.objects.select_for_update(of=("self",)).select_related("dataset", "project").filter(pk=run_id).first()
        if run is None or run.is_final:
            return None
        now = timezone.now()
        if run.status == Status.RUNNING and run.claim_token and run.heartbeat_at and now - run.heartbeat_at < stale_after():
            return "busy"
        if run.cancel_requested and run.status == Status.QUEUED:
            run.transition(Status.CANCELLED)
            return None
        if run.attempts_since_resume >= MAX_ATTEMPTS:
            run.transition(Status.FAILED, error=(
                f"The run stopped without finishing {MAX_ATTEMPTS} times (its worker was lost, for example "
                "because it ran out of memory). Lower the budget-related settings or ask the administrators."
            ))
            return None
        token = uuid.uuid4().hex
        run.claim_token = token
        run.worker = (worker or socket.gethostname())[:200]
        run.heartbeat_at = now
        run.attempts += 1
        run.save(update_fields=["claim_token", "worker", "heartbeat_at", "attempts"])
        if run.status == Status.QUEUED:
            run.transition(Status.RUNNING)
    return run, token


class Heartbeat(threading.Thread):
    """Refreshes ``heartbeat_at`` while the engine works (a long validation has no events);
    ``lost`` turns true once another worker holds the run."""

    def __init__(self, run_id: int, token: str):
        super().__init__(name=f"run-{run_id}-heartbeat", daemon=True)
        self.run_id, self.token = run_id, token
        self.stopped = threading.Event()
        self.lost = False

    def run(self):
        interval = max(0.5, stale_after().total_seconds() / 4)
        try:
            while not self.stopped.wait(interval):
                try:
                    if not Run.objects.filter(pk=self.run_id, claim_token=self.token).update(heartbeat_at=timezone.now()):
                        self.lost = True
                        return
                except Exception:
                    log.warning("Heartbeat of run %s failed", self.run_id, exc_info=True)
        finally:
            connection.close()

    def stop(self):
        self.stopped.set()
        self.join(timeout=10)


class CancelCheck:
    """The engine's cancel token: reads ``cancel_requested`` at most once per ``every``
    seconds; raises LostClaim if the run was taken over."""

    def __init__(self, run_id: int, token: str, heartbeat: Heartbeat, every: float = 1.0):
        self.run_id, self.token, self.heartbeat, self.every = run_id, token, heartbeat, every
        self.checked_at = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        if self.heartbeat.lost:
            raise LostClaim(f"run {self.run_id} was taken over")
        now = time.monotonic()
        if not self.cancelled and now - self.checked_at >= self.every:
            self.checked_at = now
            row = Run.objects.filter(pk=self.run_id).values_list("cancel_requested", "claim_token").first()
            if row is None or row[1] != self.token:
                raise LostClaim(f"run {self.run_id} was taken over")
            self.cancelled = bool(row[0])
        return self.cancelled


def finish(run_id: int, token: str, status: str, *, error: str | None = None, genotype: dict | None = None) -> Run | None:
    """Record the outcome under the claim (a worker that lost the run changes nothing); a
    retraining run that succeeded registers its bundle as a model."""
    from webapp.mlmodels.services import register_model

    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.claim_token != token or run.is_final:
            return None
        if genotype is not None:
            run.genotype = genotype
            run.save(update_fields=["genotype"])
        if status == Status.SUCCEEDED and run.kind == Run.Kind.RETRAIN:
            try:
                with transaction.atomic():
                    register_model(run)
            except ValidationError as exc:
                status, error = Status.FAILED, " ".join(exc.messages)
        run.transition(status, error=error)
    run_changed(run)
    return run


# --------------------------------------------------------------------------------- files

@dataclass(frozen=True)
class StartPoint:
    """Where an attempt starts: ``resume`` from the run's own checkpoint, or from scratch;
    ``restart`` when an earlier attempt of this run died before writing any checkpoint."""

    resume: bool
    restart: bool


def checkpoint_dir(run: Run) -> Path:
    from nasengine.api import CHECKPOINT_DIR

    return run.out_dir / CHECKPOINT_DIR


#: The ownership record of a run's checkpoints, in the run's folder (not among the stages).
OWNERSHIP_FILE = "checkpoint-ownership.json"
#: Where checkpoints the record does not vouch for are moved (kept for a person to look at).
FOREIGN_DIR = "checkpoints-foreign"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_ownership(run: Run) -> dict | None:
    """The run folder's ownership record, or None (missing or unreadable)."""
    try:
        doc = json.loads((run.out_dir / OWNERSHIP_FILE).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _names_this_run(doc: dict | None, run: Run) -> bool:
    return (isinstance(doc, dict) and doc.get("run_id") == run.pk
            and doc.get("storage_key") == str(run.storage_key))


class CheckpointOwnership:
    """Reporter sink of an attempt: after each ``checkpoint`` event, records that the file is
    this run's (see the module docstring). It sits before the database sink, so the record is
    written as soon as the engine has replaced the file.

    Entries of stages an earlier attempt of this run wrote are kept (a later stage may resume
    while an earlier one stays complete); the record's ``attempt`` is the one writing now.
    """

    def __init__(self, run: Run, token: str):
        self.path = run.out_dir / OWNERSHIP_FILE
        previous = read_ownership(run)
        files = dict(previous.get("files") or {}) if _names_this_run(previous, run) else {}
        self.doc = {"run_id": run.pk, "storage_key": str(run.storage_key), "attempt": run.attempts,
                    "claim_token": token, "files": files}

    def __call__(self, event: dict) -> None:
        if event.get("type") != "checkpoint" or not event.get("path"):
            return
        file = Path(event["path"])
        if not file.is_file():
            return
        self.doc["files"][file.name] = {"sha256": _digest(file), "size": file.stat().st_size,
                                        "attempt": self.doc["attempt"], "seq": event.get("seq")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.doc), encoding="utf-8")
        os.replace(tmp, self.path)


def vouched_checkpoints(run: Run) -> list[Path]:
    """Keep the stage checkpoints the ownership record vouches for (this run by id and folder
    key, an earlier attempt, the same SHA-256); move every other one into ``FOREIGN_DIR`` with
    a logged note. Returns the files kept."""
    from nasengine.training.checkpoint import stage_files

    doc = read_ownership(run)
    owned = _names_this_run(doc, run) and int(doc.get("attempt") or 0) < run.attempts
    entries = (doc.get("files") or {}) if owned else {}
    kept = []
    for file in stage_files(checkpoint_dir(run)):
        entry = entries.get(file.name) if isinstance(entries, dict) else None
        if isinstance(entry, dict) and entry.get("size") == file.stat().st_size and entry.get("sha256") == _digest(file):
            kept.append(file)
            continue
        why = ("no ownership record names this run" if not owned else
               "the ownership record does not list it" if not isinstance(entry, dict) else
               "its bytes differ from those the run wrote")
        aside = run.out_dir / FOREIGN_DIR / f"{file.name}.{int(time.time() * 1000)}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, aside)
        log.warning("Run %s, attempt %s: checkpoint %s is not loaded (%s); moved to %s",
                    run.pk, run.attempts, file, why, aside)
    return kept


def start_point(run: Run) -> StartPoint:
    """Decide how this attempt (``run.attempts``, already counted) starts, and prepare the folder.

    A first attempt never resumes: anything already in the run's folder was written by
    something else (a folder restored from a backup, or left by a run whose id the database
    reused), so it is removed. A later attempt resumes when a checkpoint of any stage the
    ownership record vouches for is there (``vouched_checkpoints``; the others are moved
    aside), else it restarts from scratch.
    """
    out = run.out_dir
    if run.attempts <= 1:
        if out.exists() and any(out.iterdir()):
            log.warning("Run %s: its folder %s holds files it did not write; they are removed", run.pk, out)
            shutil.rmtree(out)
        return StartPoint(resume=False, restart=False)
    resume = bool(vouched_checkpoints(run))
    return StartPoint(resume=resume, restart=not resume)


def raised_by_checkpoint_load(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) came out of reading a checkpoint file in
    the engine (``nasengine/training/checkpoint.py``): a torn, damaged or foreign file."""
    from nasengine.training import checkpoint

    module_file = Path(checkpoint.__file__).resolve()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve() == module_file:
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def unreadable_checkpoint_message(exc: BaseException) -> str:
    return (
        "The run's checkpoint could not be read, so it cannot resume: the file is damaged or was not "
        f"written by this version of VoxelSearch ({_one_line(exc)[:200]}). Clone the run to start it afresh."
    )


# --------------------------------------------------------------------------------- execute

def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _lost(exc: BaseException) -> bool:
    return isinstance(exc, LostClaim) or isinstance(exc.__context__, LostClaim) or isinstance(exc.__cause__, LostClaim)


def run_execute(*, run_id: int, worker: str = "") -> str:
    """Run the search or retraining of ``run_id`` in this process (the Celery task calls this).

    Returns what happened: "done", "busy" (another live worker holds it), "skipped", "lost",
    or "delegated" (a C2FNAS search handed to the candidate executor's tasks).
    """
    from nasengine import api
    from nasengine.config import ConfigError
    from nasengine.data import DataError
    from nasengine.events import CallableCancelToken, Cancelled, Reporter
    from nasengine.genotype import GenotypeError
    from nasengine.inference.bundle import BundleError

    claimed = claim(run_id, worker)
    if claimed in (None, "busy"):
        return claimed or "skipped"
    run, token = claimed
    if run.dataset is None:
        finish(run.pk, token, Status.FAILED, error="The run's dataset was deleted.")
        return "done"
    run_changed(run)
    if run.kind == Run.Kind.SEARCH and run.method in candidates.DISTRIBUTED_METHODS:
        return _delegate(run, token)
    out = run.out_dir
    start = start_point(run)
    heartbeat = Heartbeat(run.pk, token)
    heartbeat.start()
    # Only a resume may drop stored events (the engine rewinds to its checkpoint); a restart
    # drops those of the attempt that died before its first checkpoint (done just below).
    sink = RunEventSink(run.pk, token, may_rewind=start.resume or start.restart)
    reporter = Reporter([CheckpointOwnership(run, token), sink])
    cancel = CallableCancelToken(CancelCheck(run.pk, token, heartbeat))
    log.info("Run %s (%s) starts on %s, attempt %s%s", run.pk, run.kind, run.worker, run.attempts,
             ", resuming" if start.resume else (", restarting from scratch" if start.restart else ""))
    try:
        if start.restart:
            reporter.rewind(0)
        if run.kind == Run.Kind.SEARCH:
            genotype = api.search(run.method, run.dataset.msd_dir, out, preset=run.preset, overrides=run.config,
                                  reporter=reporter, cancel=cancel, resume=start.resume)
            finish(run.pk, token, Status.SUCCEEDED, genotype=genotype)
        else:
            api.retrain(run.genotype, run.dataset.msd_dir, out, preset=run.preset, overrides=run.config,
                        reporter=reporter, cancel=cancel, resume=start.resume,
                        method=engine.retrain_method(run.genotype))
            finish(run.pk, token, Status.SUCCEEDED)
    except LostClaim:
        log.warning("Run %s was taken over by another worker; this one stops", run_id)
        return "lost"
    except Cancelled:
        finish(run.pk, token, Status.CANCELLED)
    except (ConfigError, DataError, GenotypeError, BundleError) as exc:
        finish(run.pk, token, Status.FAILED, error=_one_line(exc))
    except Exception as exc:
        if _lost(exc):
            return "lost"
        if start.resume and raised_by_checkpoint_load(exc):
            log.warning("Run %s: unreadable checkpoint in %s", run_id, checkpoint_dir(run), exc_info=True)
            finish(run.pk, token, Status.FAILED, error=unreadable_checkpoint_message(exc))
        else:
            log.exception("Run %s failed", run_id)
            finish(run.pk, token, Status.FAILED, error=f"Internal error: {_one_line(exc)} (details in the worker's log).")
    finally:
        heartbeat.stop()
        close_old_connections()
    return "done"


def _delegate(run: Run, token: str) -> str:
    """Start (or pick up) a C2FNAS run's distributed search and return; the run stays
    ``running`` under this claim, its heartbeat kept by the search's events and steps."""
    from nasengine.config import ConfigError
    from nasengine.data import DataError

    if run.attempts <= 1:
        start_point(run)  # a first attempt clears what it did not write
    try:
        how = candidates.start_run_search(run)
    except (ConfigError, DataError) as exc:
        finish(run.pk, token, Status.FAILED, error=_one_line(exc))
        return "done"
    except Exception as exc:
        log.exception("Run %s: could not start its distributed search", run.pk)
        finish(run.pk, token, Status.FAILED, error=f"Internal error: {_one_line(exc)} (details in the worker's log).")
        return "done"
    log.info("Run %s (%s) %s its distributed search from %s, attempt %s", run.pk, run.method, how,
             run.worker, run.attempts)
    return "delegated"


# --------------------------------------------------------------------------------- orphans

def run_requeue_orphans(*, stale_only: bool = False) -> list[int]:
    """Queue again the runs left ``running`` by a worker that died.

    Called when a worker starts (``worker_ready``): runs whose heartbeat is stale are queued now,
    the others in one stale period (their worker may have died just now). Called with
    ``stale_only`` after each run job, so a surviving worker also rescues another's run. At most
    one re-sent job per run and stale period; the claim guard makes a needless one a no-op.
    """
    from .tasks import task_for

    requeued = []
    stale = stale_after()
    now = timezone.now()
    for run in Run.objects.filter(status=Status.RUNNING).only("pk", "kind", "heartbeat_at", "requeued_at"):
        fresh = run.heartbeat_at is not None and now - run.heartbeat_at < stale
        if (stale_only and fresh) or (run.requeued_at is not None and now - run.requeued_at < stale):
            continue
        if not Run.objects.filter(pk=run.pk, requeued_at=run.requeued_at).update(requeued_at=now):
            continue  # another worker re-sent it just now
        countdown = stale.total_seconds() + 1 if fresh else 0
        task_for(run.kind).apply_async(args=[run.pk], countdown=countdown)
        requeued.append(run.pk)
        log.info("Re-queued orphaned run %s (in %ss)", run.pk, countdown)
    return requeued
