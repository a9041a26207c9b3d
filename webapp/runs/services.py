"""Writes for runs: create (search, retrain, clone), cancel, and execute (called by the tasks).

A run is executed by whichever worker *claims* it: a compare-and-set of ``claim_token`` under
a row lock. A worker keeps its claim alive with a heartbeat; a redelivered or re-queued task
finds the run claimed with a fresh heartbeat and leaves it alone, or claimed with a stale
heartbeat (the worker died) and takes it over, resuming from the run's last checkpoint.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from webapp.common.tasks import enqueue_on_commit
from webapp.datasets.models import Dataset
from webapp.projects.access import require_write

from . import engine
from .events import LostClaim, RunEventSink, run_changed
from .models import Run

log = logging.getLogger(__name__)

Status = Run.Status
#: A run whose worker has not been heard of this long is taken to be orphaned (worker died).
MAX_ATTEMPTS = 3


def stale_after() -> timedelta:
    seconds = getattr(settings, "VOXELSEARCH_RUN_STALE_SECONDS", None) or int(os.environ.get("VOXELSEARCH_RUN_STALE_SECONDS", "120"))
    return timedelta(seconds=int(seconds))


# --------------------------------------------------------------------------------- create

def _budget(value) -> int:
    try:
        budget = int(value)
    except (TypeError, ValueError):
        raise ValidationError({"gpu_budget_bytes": ["Give the GPU memory budget in bytes."]})
    if budget <= 0:
        raise ValidationError({"gpu_budget_bytes": ["The GPU memory budget must be positive."]})
    return budget


def _require_ready(dataset: Dataset) -> None:
    if dataset.status != Dataset.Status.READY:
        raise ValidationError({"dataset": [f"The dataset is {dataset.get_status_display().lower()}; runs need a ready dataset."]})


def estimate(*, dataset: Dataset, kind: str, method: str = "", preset: str = "", config=None, seed=None,
             genotype: dict | None = None, gpu_budget_bytes=None) -> dict:
    """The memory estimate of a configuration against the budget (does not refuse: reports)."""
    if kind == Run.Kind.RETRAIN:
        doc = engine.validate_genotype(genotype)
        _, values = engine.retrain_config(preset, config, seed)
        result = engine.estimate_retrain(dataset, doc, values)
    else:
        method = method or engine.method_names()[0]
        cfg, values = engine.search_config(method, preset, config, seed)
        result = engine.estimate_search(dataset, method, cfg)
    result["resolved_config"] = values
    if gpu_budget_bytes not in (None, ""):
        budget = _budget(gpu_budget_bytes)
        result["budget_bytes"] = budget
        result["fits"] = result["needed_bytes"] <= budget
        result["message"] = (
            f"needs {engine.format_gb(result['needed_bytes'])} to {result['what']}, budget {engine.format_gb(budget)}"
        )
    return result


def _enqueue(run: Run) -> None:
    from .tasks import run_retrain, run_search

    task = run_search if run.kind == Run.Kind.SEARCH else run_retrain
    run_id = run.pk
    enqueue_on_commit(task, run_id, on_error=lambda: _fail_unqueued(run_id))


def _fail_unqueued(run_id: int) -> None:
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is not None and run.status == Status.QUEUED:
            run.transition(Status.FAILED, error="The run could not be queued because the task queue (Redis) is not reachable. Try again later.")
    if run is not None:
        run_changed(run)


@transaction.atomic
def run_create_search(*, actor, dataset: Dataset, method: str, preset: str = "", config=None, seed=None,
                      gpu_budget_bytes, name: str = "", parent: Run | None = None) -> Run:
    """Validate (engine config, memory against budget), create a queued search run, queue it."""
    require_write(actor, dataset.project)
    _require_ready(dataset)
    budget = _budget(gpu_budget_bytes)
    cfg, values = engine.search_config(method, preset, config, seed)
    est = engine.estimate_search(dataset, method, cfg)
    engine.check_budget(est, budget)
    run = Run.objects.create(
        project=dataset.project, dataset=dataset, kind=Run.Kind.SEARCH, method=method,
        preset=preset or values.get("preset", "") or "paper", config=dict(config or {}) | ({"seed": seed} if seed is not None else {}),
        resolved_config=values, seed=int(values.get("seed") or 0), gpu_budget_bytes=budget,
        estimate_bytes=est["needed_bytes"], estimate_details=est, name=(name or "").strip()[:200],
        parent=parent, created_by=actor,
    )
    _enqueue(run)
    return run


@transaction.atomic
def run_create_retrain(*, actor, dataset: Dataset, genotype, preset: str = "", config=None, seed=None,
                       gpu_budget_bytes, name: str = "", source_run: Run | None = None,
                       parent: Run | None = None) -> Run:
    """Retrain a (validated) genotype on a dataset; on success the bundle becomes a model."""
    require_write(actor, dataset.project)
    _require_ready(dataset)
    if source_run is not None and source_run.project_id != dataset.project_id:
        raise ValidationError({"dataset": ["Retrain on a dataset of the same project."]})
    budget = _budget(gpu_budget_bytes)
    doc = engine.validate_genotype(genotype)
    in_ch, out_ch = engine._channels(dataset)
    if doc["in_channels"] != in_ch or doc["out_channels"] != out_ch:
        raise ValidationError({"genotype": [
            f"The architecture takes {doc['in_channels']} channel(s) and predicts {doc['out_channels']} classes, "
            f"but the dataset has {in_ch} channel(s) and {out_ch} classes."
        ]})
    _, values = engine.retrain_config(preset, config, seed)
    est = engine.estimate_retrain(dataset, doc, values)
    engine.check_budget(est, budget)
    run = Run.objects.create(
        project=dataset.project, dataset=dataset, kind=Run.Kind.RETRAIN, method=doc.get("method", ""),
        preset=preset or "paper", config=dict(config or {}) | ({"seed": seed} if seed is not None else {}),
        resolved_config=values, seed=int(values.get("seed") or 0), gpu_budget_bytes=budget,
        estimate_bytes=est["needed_bytes"], estimate_details=est, genotype=doc, source_run=source_run,
        name=(name or "").strip()[:200], parent=parent, created_by=actor,
    )
    _enqueue(run)
    return run


def run_clone(*, actor, run: Run, config=None, preset=None, seed=None, gpu_budget_bytes=None, name: str = "") -> Run:
    """A new run like ``run`` with edited settings (``config`` replaces the overrides when given)."""
    kwargs = dict(
        actor=actor, dataset=run.dataset, preset=run.preset if preset in (None, "") else preset,
        config=run.config if config is None else config, seed=seed,
        gpu_budget_bytes=run.gpu_budget_bytes if gpu_budget_bytes in (None, "") else gpu_budget_bytes,
        name=name or (f"{run.name} (copy)" if run.name else ""), parent=run,
    )
    if run.kind == Run.Kind.SEARCH:
        return run_create_search(method=run.method, **kwargs)
    return run_create_retrain(genotype=run.genotype, source_run=run.source_run, **kwargs)


def run_retrain_search(*, actor, run: Run, dataset: Dataset | None = None, **kwargs) -> Run:
    """Retrain the architecture a succeeded search found."""
    if run.kind != Run.Kind.SEARCH or run.status != Status.SUCCEEDED or not run.genotype:
        raise ValidationError("Only a search that succeeded has an architecture to retrain.")
    return run_create_retrain(actor=actor, dataset=dataset or run.dataset, genotype=run.genotype, source_run=run, **kwargs)


def run_cancel(*, actor, run: Run) -> Run:
    """Ask a run to stop. A queued run is cancelled at once; a running one at its next step (the
    engine checks the flag cooperatively, writes a checkpoint and reports ``cancelled``)."""
    require_write(actor, run.project)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.is_final:
            raise ValidationError(f"The run has {run.status} already.")
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested"])
        if run.status == Status.QUEUED:
            run.transition(Status.CANCELLED)
    run_changed(run)
    return run


# --------------------------------------------------------------------------------- execute

def _claim(run_id: int, worker: str):
    """Take the run for this worker: returns (run, token), "busy" (held by a live worker) or
    None (nothing to do)."""
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
        if run.attempts >= MAX_ATTEMPTS:
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


class _Heartbeat(threading.Thread):
    """Refreshes ``heartbeat_at`` while the engine works (a long validation has no events)."""

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


class _CancelCheck:
    """Reads ``cancel_requested`` at most once a second; raises LostClaim if the run was taken over."""

    def __init__(self, run_id: int, token: str, heartbeat: _Heartbeat, every: float = 1.0):
        self.run_id, self.token, self.heartbeat, self.every = run_id, token, heartbeat, every
        self.checked_at = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        import time

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


def _finish(run_id: int, token: str, status: str, *, error: str | None = None, genotype: dict | None = None) -> Run | None:
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


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def run_execute(*, run_id: int, worker: str = "") -> str:
    """Run the search or retraining of ``run_id`` in this process (the Celery task calls this).

    Returns what happened: "done", "busy" (another live worker holds it), "skipped", "lost".
    """
    from nasengine import api
    from nasengine.config import ConfigError
    from nasengine.data import DataError
    from nasengine.events import CallableCancelToken, Cancelled, Reporter
    from nasengine.genotype import GenotypeError
    from nasengine.inference.bundle import BundleError
    from nasengine.training.checkpoint import CHECKPOINT_NAME

    claim = _claim(run_id, worker)
    if claim in (None, "busy"):
        return claim or "skipped"
    run, token = claim
    if run.dataset is None:
        _finish(run.pk, token, Status.FAILED, error="The run's dataset was deleted.")
        return "done"
    run_changed(run)
    out = run.out_dir
    resume = (out / api.CHECKPOINT_DIR / CHECKPOINT_NAME).is_file()
    heartbeat = _Heartbeat(run.pk, token)
    heartbeat.start()
    reporter = Reporter([RunEventSink(run.pk, token)])
    cancel = CallableCancelToken(_CancelCheck(run.pk, token, heartbeat))
    log.info("Run %s (%s) starts on %s, attempt %s%s", run.pk, run.kind, run.worker, run.attempts, ", resuming" if resume else "")
    try:
        if run.kind == Run.Kind.SEARCH:
            genotype = api.search(run.method, run.dataset.msd_dir, out, preset=run.preset, overrides=run.config,
                                  reporter=reporter, cancel=cancel, resume=resume)
            _finish(run.pk, token, Status.SUCCEEDED, genotype=genotype)
        else:
            api.retrain(run.genotype, run.dataset.msd_dir, out, preset=run.preset, overrides=run.config,
                        reporter=reporter, cancel=cancel, resume=resume)
            _finish(run.pk, token, Status.SUCCEEDED)
    except LostClaim:
        log.warning("Run %s was taken over by another worker; this one stops", run_id)
        return "lost"
    except Cancelled:
        _finish(run.pk, token, Status.CANCELLED)
    except (ConfigError, DataError, GenotypeError, BundleError) as exc:
        _finish(run.pk, token, Status.FAILED, error=_one_line(exc))
    except Exception as exc:
        if isinstance(exc.__context__, LostClaim) or isinstance(exc.__cause__, LostClaim):
            return "lost"
        log.exception("Run %s failed", run_id)
        _finish(run.pk, token, Status.FAILED, error=f"Internal error: {_one_line(exc)} (details in the worker's log).")
    finally:
        heartbeat.stop()
        close_old_connections()
    return "done"


def run_requeue_orphans(*, stale_only: bool = False) -> list[int]:
    """Queue again the runs left ``running`` by a worker that died.

    Called when a worker starts (``worker_ready``): runs whose heartbeat is stale are queued now,
    the others in one stale period (their worker may have died just now). Called with
    ``stale_only`` after each run job, so a surviving worker also rescues another's run. At most
    one re-sent job per run and stale period; the claim guard makes a needless one a no-op.
    """
    from .tasks import run_retrain, run_search

    requeued = []
    stale = stale_after()
    now = timezone.now()
    for run in Run.objects.filter(status=Status.RUNNING).only("pk", "kind", "heartbeat_at", "requeued_at"):
        fresh = run.heartbeat_at is not None and now - run.heartbeat_at < stale
        if (stale_only and fresh) or (run.requeued_at is not None and now - run.requeued_at < stale):
            continue
        if not Run.objects.filter(pk=run.pk, requeued_at=run.requeued_at).update(requeued_at=now):
            continue  # another worker re-sent it just now
        task = run_search if run.kind == Run.Kind.SEARCH else run_retrain
        countdown = stale.total_seconds() + 1 if fresh else 0
        task.apply_async(args=[run.pk], countdown=countdown)
        requeued.append(run.pk)
        log.info("Re-queued orphaned run %s (in %ss)", run.pk, countdown)
    return requeued


def run_delete(*, actor, run: Run) -> None:
    """Delete a finished run, its events and its files. Refused while it is queued or running
    (cancel it first) and while a registered model was trained by it (delete the model first)."""
    import shutil

    from webapp.mlmodels.models import TrainedModel

    require_write(actor, run.project)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if not run.is_final:
            raise ValidationError(f"The run is {run.status}; cancel it and wait until it stops, then delete it.")
        model = TrainedModel.objects.filter(run=run).first()
        if model is not None:
            raise ValidationError(f"The run produced the model “{model.name}”; delete the model first.")
        out = run.out_dir
        run.delete()
        transaction.on_commit(lambda: shutil.rmtree(out, ignore_errors=True))
