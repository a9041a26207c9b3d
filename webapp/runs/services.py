"""User commands on runs: estimate, create (search, retrain, clone), retrain a search, cancel,
delete. Each checks access and validates before it writes; a created run is queued once the
transaction commits. Executing a run is the worker runtime's job (``runtime``).
"""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from webapp.common.tasks import enqueue_on_commit
from webapp.datasets.models import Dataset
from webapp.projects.access import require_write

from . import engine
from .events import run_changed
from .models import Run

log = logging.getLogger(__name__)

Status = Run.Status


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
        _, values = engine.retrain_config(preset, config, seed, method=engine.retrain_method(doc))
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
        result["budget_fraction"] = round(result["needed_bytes"] / budget, 4)
        result["message"] = (
            f"needs {engine.format_gb(result['needed_bytes'])} to {result['what']}, budget {engine.format_gb(budget)}"
        )
    return result


def _enqueue(run: Run) -> None:
    from .tasks import task_for

    run_id = run.pk
    enqueue_on_commit(task_for(run.kind), run_id, on_error=lambda: _fail_unqueued(run_id))


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
    method = engine.retrain_method(doc)  # its retraining settings and presets (None: the shared ones)
    preset = preset or engine.default_retrain_preset(method)
    _, values = engine.retrain_config(preset, config, seed, method=method)
    est = engine.estimate_retrain(dataset, doc, values)
    engine.check_budget(est, budget)
    run = Run.objects.create(
        project=dataset.project, dataset=dataset, kind=Run.Kind.RETRAIN, method=doc.get("method", ""),
        preset=preset, config=dict(config or {}) | ({"seed": seed} if seed is not None else {}),
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
