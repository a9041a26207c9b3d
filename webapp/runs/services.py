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

#: The largest budget a run row can hold (a signed 64-bit column): 9.2 EB, far above any device.
MAX_BUDGET_BYTES = 2**63 - 1


def _budget(value) -> int:
    try:
        budget = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError({"gpu_budget_bytes": ["Give the GPU memory budget in bytes."]})
    if budget <= 0:
        raise ValidationError({"gpu_budget_bytes": ["The GPU memory budget must be positive."]})
    if budget > MAX_BUDGET_BYTES:
        raise ValidationError({"gpu_budget_bytes": [f"The GPU memory budget must be at most {MAX_BUDGET_BYTES} bytes."]})
    return budget


def check_workers(est: dict) -> None:
    """Refuse, with the numbers, an estimate that fits no connected run worker's free memory.

    The bound comes from the workers (``webapp.common.workers``); the client's budget is checked
    separately and can only lower it. Choice: with no run worker connected nothing is known, so
    the launch is accepted and stays queued until one connects (it is checked against the budget).
    """
    from webapp.common import workers

    bound = workers.memory_bound()
    if bound is None or est["needed_bytes"] <= bound["bytes"]:
        return
    raise ValidationError({"gpu_budget_bytes": [
        f"needs {engine.format_gb(est['needed_bytes'])} to {est['what']}, but the connected worker with the most free "
        f"memory ({bound['hostname']}, {bound['device']}) has {engine.format_gb(bound['bytes'])} free: lower the "
        "patch size, batch size, layers or filters, or start a bigger worker."
    ]})


# ---------------------------------------------------------------------------------- names

def method_label(method: str) -> str:
    """How the method's paper spells it ("DiNTS", "C2FNAS"), else its name in capitals."""
    import re

    for m in engine.catalogue()["methods"]:
        if m["name"] == method:
            for word in re.findall(r"([A-Za-z0-9-]+):", m.get("paper") or ""):
                if word.lower() == method.lower():
                    return word
    return (method or "").upper()


def default_name(*, kind: str, method: str, dataset: Dataset | None, preset: str, seed: int,
                 source_run: Run | None = None) -> str:
    """A name that says what the run is: "DiNTS · Liver CT · tiny · seed 0"; a retrain is
    "Retrain of <the search's name>" when it retrains a search, else "Retrain · <genotype's
    method> · …"."""
    parts = [method_label(method), dataset.name if dataset is not None else "", preset, f"seed {seed}"]
    name = " · ".join(p for p in parts if p)
    if kind == Run.Kind.RETRAIN:
        if source_run is not None:
            name = f"Retrain of {source_run.name or default_name(kind=source_run.kind, method=source_run.method, dataset=source_run.dataset, preset=source_run.preset, seed=source_run.seed)}"
            if dataset is not None and source_run.dataset_id != dataset.pk:
                name += f" on {dataset.name}"
            name += f" · {preset} · seed {seed}"
        else:
            name = f"Retrain · {name}"
    return name[:200]


def run_rename(*, actor, run: Run, name: str) -> Run:
    """Give a run a new name (blank: its default name)."""
    require_write(actor, run.project)
    name = (name or "").strip()
    if len(name) > 200:
        raise ValidationError({"name": ["A name has at most 200 characters."]})
    run.name = name or default_name(kind=run.kind, method=run.method, dataset=run.dataset, preset=run.preset,
                                    seed=run.seed, source_run=run.source_run)
    run.save(update_fields=["name"])
    return run


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
        method = doc.get("method", "")
    else:
        method = method or engine.method_names()[0]
        cfg, values = engine.search_config(method, preset, config, seed)
        result = engine.estimate_search(dataset, method, cfg)
    result["resolved_config"] = values
    result["workers"] = _worker_fit(result)
    result["duration"] = estimate_duration(kind=kind, method=result.get("method") or method or "", values=values)
    if gpu_budget_bytes not in (None, ""):
        budget = _budget(gpu_budget_bytes)
        result["budget_bytes"] = budget
        result["fits"] = result["needed_bytes"] <= budget
        result["budget_fraction"] = round(result["needed_bytes"] / budget, 4)
        result["message"] = (
            f"needs {engine.format_gb(result['needed_bytes'])} to {result['what']}, budget {engine.format_gb(budget)}"
        )
    return result


def _worker_fit(est: dict) -> dict:
    """What the connected run workers offer against the estimate (for the form)."""
    from webapp.common import workers

    connected = workers.connected_workers()
    bound = workers.memory_bound(connected)
    return {
        "connected": [{k: w.get(k) for k in ("hostname", "device", "device_name", "free_bytes", "total_bytes", "queues")}
                      for w in workers.gpu_queue_workers(connected)],
        "gpu_worker_up": workers.gpu_worker_up(connected),
        "bound_bytes": bound["bytes"] if bound else None,
        "fits": None if bound is None else est["needed_bytes"] <= bound["bytes"],
    }


def planned_steps(*, kind: str, values: dict) -> int | None:
    """Optimisation steps a configuration plans, where the settings say it plainly: a search's
    warm-up + weight-only + search steps, a retraining's ``steps``. None for a method whose
    steps are not a plain count (C2FNAS trains a variable number of candidates)."""
    def count(key):
        value = values.get(key)
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0

    if kind == Run.Kind.RETRAIN:
        return count("steps") or None
    if "search_steps" in values:
        return count("warmup_steps") + count("weight_only_steps") + count("search_steps") or None
    return None


def estimate_duration(*, kind: str, method: str, values: dict) -> dict:
    """An estimated duration from a measured step time (``selectors.measured_step_seconds``) on
    the kind of device the connected workers have (CUDA when one is up). ``seconds`` is None and
    ``message`` says so when nothing was measured yet or the step count is not known."""
    from webapp.common import workers

    from .selectors import measured_step_seconds

    device = "cuda" if workers.gpu_worker_up() else "cpu"
    measured = measured_step_seconds(method=method, kind=kind, patch_size=values.get("patch_size"), device=device)
    steps = planned_steps(kind=kind, values=values)
    out = {"seconds": None, "steps": steps, "measured": measured, "device": device}
    if measured is None:
        out["message"] = f"no measurement yet (no finished {kind} of this method at this patch size on {device})"
    elif steps is None:
        out["message"] = f"{measured['seconds_per_step']:.2f} s per step measured (run #{measured['run']}); this method's step count is not known ahead"
    else:
        out["seconds"] = round(measured["seconds_per_step"] * steps, 1)
        out["message"] = (f"about {_human_seconds(out['seconds'])}: {steps:,} steps at {measured['seconds_per_step']:.2f} s "
                          f"per step, measured on {measured['worker'] or 'a worker'} ({measured['device']}) in run #{measured['run']}")
    return out


def _human_seconds(s: float) -> str:
    if s < 90:
        return f"{round(s)} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


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
    check_workers(est)
    preset = preset or values.get("preset", "") or "paper"
    seed_value = int(values.get("seed") or 0)
    name = (name or "").strip()[:200] or default_name(kind=Run.Kind.SEARCH, method=method, dataset=dataset,
                                                      preset=preset, seed=seed_value)
    run = Run.objects.create(
        project=dataset.project, dataset=dataset, kind=Run.Kind.SEARCH, method=method,
        preset=preset, config=dict(config or {}) | ({"seed": seed} if seed is not None else {}),
        resolved_config=values, seed=seed_value, gpu_budget_bytes=budget,
        estimate_bytes=est["needed_bytes"], estimate_details=est, name=name,
        parent=parent, created_by=actor,
    )
    _enqueue(run)
    return run


@transaction.atomic
def run_create_retrain(*, actor, dataset: Dataset, genotype, preset: str = "", config=None, seed=None,
                       gpu_budget_bytes, name: str = "", source_run: Run | None = None,
                       parent: Run | None = None, controls: bool = False) -> Run:
    """Retrain a (validated) genotype on a dataset; on success the bundle becomes a model.
    ``controls``: once it succeeded, also train the two controls (signals.py)."""
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
    check_workers(est)
    seed_value = int(values.get("seed") or 0)
    name = (name or "").strip()[:200] or default_name(kind=Run.Kind.RETRAIN, method=doc.get("method", ""), dataset=dataset,
                                                      preset=preset, seed=seed_value, source_run=source_run)
    run = Run.objects.create(
        project=dataset.project, dataset=dataset, kind=Run.Kind.RETRAIN, method=doc.get("method", ""),
        preset=preset, config=dict(config or {}) | ({"seed": seed} if seed is not None else {}),
        resolved_config=values, seed=seed_value, gpu_budget_bytes=budget,
        estimate_bytes=est["needed_bytes"], estimate_details=est, genotype=doc, source_run=source_run,
        name=name, parent=parent, created_by=actor, controls_requested=bool(controls),
    )
    _enqueue(run)
    return run


def run_clone(*, actor, run: Run, config=None, preset=None, seed=None, gpu_budget_bytes=None, name: str = "",
              controls: bool = False) -> Run:
    """A new run like ``run`` with edited settings (``config`` replaces the overrides when given)."""
    kwargs = dict(
        actor=actor, dataset=run.dataset, preset=run.preset if preset in (None, "") else preset,
        config=run.config if config is None else config, seed=seed,
        gpu_budget_bytes=run.gpu_budget_bytes if gpu_budget_bytes in (None, "") else gpu_budget_bytes,
        name=name or (f"{run.name} (copy)" if run.name and run.name != _default_name_of(run) else ""), parent=run,
    )
    if run.kind == Run.Kind.SEARCH:
        return run_create_search(method=run.method, **kwargs)
    return run_create_retrain(genotype=run.genotype, source_run=run.source_run, controls=controls, **kwargs)


def _default_name_of(run: Run) -> str:
    return default_name(kind=run.kind, method=run.method, dataset=run.dataset, preset=run.preset, seed=run.seed,
                        source_run=run.source_run)


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


def run_resume(*, actor, run: Run) -> Run:
    """Queue a cancelled run again; its worker resumes from the run's last checkpoint (the
    runtime's later-attempt path), or starts afresh when it was cancelled before any step."""
    require_write(actor, run.project)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != Status.CANCELLED:
            raise ValidationError(f"Only a cancelled run can be resumed; this one is {run.status}.")
        if run.dataset is None:
            raise ValidationError("The run's dataset was deleted; it cannot be resumed.")
        # The lost-worker count starts again (``attempts_at_resume``): a run can be resumed as
        # often as its user likes.
        run.save(update_fields=run.reopen_for_resume())
        _enqueue(run)
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


def run_launch_requested_controls(run_id: int) -> list:
    """After a retrain run that asked for controls succeeded (its model registered): train the
    two controls beside it, as its creator (``launch_controls`` checks access and refuses
    twice). Returns the control runs, or [] when there is nothing to do."""
    from webapp.evaluations.services import launch_controls

    run = Run.objects.select_related("project", "dataset", "created_by").filter(pk=run_id).first()
    if (run is None or not run.controls_requested or run.kind != Run.Kind.RETRAIN or run.status != Status.SUCCEEDED
            or run.created_by is None):
        return []
    return launch_controls(run, run.created_by)
