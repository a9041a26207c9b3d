"""Writes for evaluations and controls.

- ``evaluation_create(model)``: one queued evaluation per registered model (the post_save
  signal calls it once the registration commits), sent to the ``gpu`` queue.
- ``evaluation_run(evaluation_id)`` (the Celery task): decide the largest-component
  post-processing on the model's validation cases (nnU-Net's rule; stored beside the bundle
  so later predictions use it too), then segment each held-out test case through the same
  prediction users get and score it in the input's own geometry.
- ``evaluation_retry``: evaluate again (after a failure, or once test cases exist).
- ``launch_controls(run, actor)``: the two control retrainings of a searched architecture.
- ``launch_folds(run, actor)``: k-fold retrainings; once all are registered their ensemble is
  assembled, its post-processing decided and it is scored on the test split (``ensemble_run``).
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from webapp.common.tasks import enqueue_on_commit
from webapp.projects.access import require_write

from .models import ControlSet, Evaluation

log = logging.getLogger(__name__)

Status = Evaluation.Status
#: An evaluation delivered this often killed its worker each time (out of memory?): give up.
MAX_ATTEMPTS = 3


# --------------------------------------------------------------------------- evaluations

def _queue(evaluation_id: int) -> None:
    from .tasks import run_evaluation

    enqueue_on_commit(run_evaluation, evaluation_id, on_error=lambda: _fail(
        evaluation_id, "The evaluation could not be queued (the task queue did not take it)."))


def evaluation_create(model) -> Evaluation:
    """The model's evaluation, created queued and sent to a worker if it did not exist."""
    with transaction.atomic():
        evaluation, created = Evaluation.objects.get_or_create(
            model=model, defaults={"project_id": model.project_id})
        if created:
            _queue(evaluation.pk)
    return evaluation


def evaluation_retry(*, actor, model) -> Evaluation:
    """Evaluate a model again (its earlier result is replaced once the new one is done)."""
    require_write(actor, model.project)
    with transaction.atomic():
        old = Evaluation.objects.select_for_update().filter(model=model).first()
        if old is not None and not old.is_final:
            raise ValidationError("The model is being evaluated already.")
        if old is not None:
            old.delete()
        evaluation = Evaluation.objects.create(model=model, project_id=model.project_id, created_by=actor)
        _queue(evaluation.pk)
    return evaluation


def _fail(evaluation_id: int, error: str, status: str = Status.FAILED) -> Evaluation | None:
    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().filter(pk=evaluation_id).first()
        if evaluation is None or evaluation.is_final:
            return evaluation
        evaluation.progress = ""
        evaluation.save(update_fields=["progress"])
        evaluation.transition(status, error=error[:4000])
    return evaluation


def _data_dir(model):
    """The dataset folder as imported (MSD layout), else None: the engine falls back to the
    folder the bundle records."""
    dataset = model.dataset
    if dataset is not None and dataset.msd_dir.is_dir():
        return dataset.msd_dir
    return None


def model_figures(bundle_dir) -> dict:
    """Parameters (counted on the loaded network) and FLOPs per patch (from the genotype,
    when it has the figures) of a bundle."""
    from nasengine.inference.bundle import load_network, read_bundle

    bundle = read_bundle(bundle_dir)
    network = load_network(bundle, "cpu")
    figures = {"parameters": int(sum(p.numel() for p in network.parameters())), "flops": None,
               "patch_size": list(bundle.plan.get("patch_size") or [])}
    try:
        from nasengine.genotype import derive_figures

        figures["flops"] = derive_figures(bundle.genotype, bundle.plan["patch_size"]).get("flops")
    except Exception:  # noqa: BLE001 - a network without genotype figures: FLOPs left unknown
        pass
    return figures


def evaluation_run(*, evaluation_id: int) -> Evaluation | None:
    """Run an evaluation (the Celery task calls this). Safe to deliver twice (acks late): a
    final evaluation is left alone; a running one whose worker died is run again."""
    from nasengine import api
    from nasengine.data.errors import DataError
    from nasengine.evaluation.cases import data_dir_of, held_out_cases
    from nasengine.inference.bundle import BundleError, read_bundle

    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update(of=("self",)).select_related("model", "model__dataset").filter(
            pk=evaluation_id).first()
        if evaluation is None or evaluation.is_final:
            return evaluation
        evaluation.attempts += 1
        evaluation.save(update_fields=["attempts"])
        if evaluation.attempts > MAX_ATTEMPTS:
            evaluation.transition(Status.FAILED, error=f"The evaluation stopped its worker {MAX_ATTEMPTS} times (out of memory?); it was given up.")
            return evaluation
        if evaluation.status == Status.QUEUED:
            evaluation.transition(Status.RUNNING)
    model = evaluation.model

    def progress(message: str) -> None:
        Evaluation.objects.filter(pk=evaluation_id).update(progress=str(message)[:300])

    try:
        bundle = read_bundle(model.bundle_path)
        data_dir = _data_dir(model)
        try:
            cases = held_out_cases(bundle, data_dir_of(bundle, data_dir))
        except DataError as error:
            return _fail(evaluation_id, "The model's dataset has no labelled test cases, so there is nothing "
                                        f"held out to score it on ({error.problem}).", Status.SKIPPED)
        progress("deciding the largest-region clean-up on the validation cases")
        decision = api.decide_postprocessing(model.bundle_path, data_dir, progress=progress)
        report = api.evaluate(model.bundle_path, data_dir, cases, progress=progress)
        report["model_figures"] = model_figures(model.bundle_path)
    except (DataError, BundleError) as error:
        text = str(error.problem) if isinstance(error, DataError) else str(error)
        return _fail(evaluation_id, f"The evaluation could not use the model or its data: {text}")
    except Exception as error:  # noqa: BLE001 - recorded on the evaluation, logged with its trace
        log.error("Evaluation %s failed:\n%s", evaluation_id, traceback.format_exc())
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return _fail(evaluation_id, f"The evaluation failed: {type(error).__name__}: {first}")
    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().get(pk=evaluation_id)
        if evaluation.is_final:
            return evaluation
        evaluation.report = report
        evaluation.n_cases = len(report.get("cases") or [])
        evaluation.mean_dice = report.get("mean_dice")
        evaluation.postprocessing = decision
        evaluation.progress = ""
        evaluation.save(update_fields=["report", "n_cases", "mean_dice", "postprocessing", "progress"])
        evaluation.transition(Status.SUCCEEDED)
    return evaluation


# --------------------------------------------------------------------------- controls

def _control_architectures(run, model) -> tuple[dict, dict]:
    """(random architecture of the run's method, hand-designed network) for the searched
    model, from ``nasengine.controls``.

    The random draw uses the search's own preset and settings (the same space the search
    explored; the seed is the run's). The hand-designed network is configured from the
    model's own preprocessing plan (target spacing, the retraining patch) and sized to the
    searched network's parameter count ("similar size")."""
    from nasengine import controls
    from nasengine.config import ConfigError
    from nasengine.genotype import GenotypeError
    from nasengine.inference.bundle import read_bundle

    doc = run.genotype or {}
    method = doc.get("method") or run.method
    search = run.source_run if run.source_run is not None and run.source_run.kind == run.Kind.SEARCH else None
    bundle = read_bundle(model.bundle_path)
    c_in, c_out = int(doc.get("in_channels") or 1), int(doc.get("out_channels") or 2)
    patch = (run.resolved_config or {}).get("patch_size") or bundle.plan.get("patch_size")
    try:
        random_doc = controls.random_architecture(
            method, None, preset=search.preset if search else None,
            overrides=dict(search.config or {}) if search else None, seed=int(run.seed or 0),
            in_channels=c_in, out_channels=c_out)
        hand_doc = controls.handdesigned_architecture(
            bundle.plan, patch_size=patch, in_channels=c_in, out_channels=c_out,
            target_parameters=model_figures(model.bundle_path)["parameters"])
    except (ConfigError, GenotypeError, ValueError, NotImplementedError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValidationError(f"The controls cannot be configured for this model: {first}")
    return random_doc, hand_doc


def _shared_recipe(run) -> tuple[str, dict]:
    """(preset, settings) of the shared retraining settings that reproduce ``run``'s recipe for
    a network of no registered method (the hand-designed control): the run's preset when the
    shared settings have it, and every resolved value the shared settings know."""
    import dataclasses

    from nasengine.training.retrain import RETRAIN_PRESETS, RetrainConfig

    known = {f.name for f in dataclasses.fields(RetrainConfig)}
    values = {k: v for k, v in (run.resolved_config or {}).items() if k in known}
    values |= {k: v for k, v in (run.config or {}).items() if k in known}
    preset = run.preset if run.preset in RETRAIN_PRESETS else ""
    return preset, values


def launch_controls(run, actor) -> list:
    """Create and queue the two control retrainings of ``run`` (a succeeded retraining of a
    searched architecture whose bundle is a registered model): (a) a random architecture of
    the same method's space, (b) the hand-designed network, each an ordinary retraining run
    on the ``gpu`` queue with the run's preset, settings, seed, data and GPU budget. Returns
    ``[random_run, handdesigned_run]``; linked to the model in a ``ControlSet``."""
    from webapp.mlmodels.models import TrainedModel
    from webapp.runs.services import run_create_retrain

    require_write(actor, run.project)
    if run.kind != run.Kind.RETRAIN or run.status != run.Status.SUCCEEDED:
        raise ValidationError("Controls are trained beside a retraining run that succeeded.")
    model = TrainedModel.objects.filter(run=run).first()
    if model is None:
        raise ValidationError("The run's model is not registered.")
    if ControlSet.objects.filter(model=model).exists():
        raise ValidationError("The controls of this model were launched already.")
    if is_control_run(run):
        raise ValidationError("This model is itself a control; its controls would compare nothing.")
    if run.dataset is None:
        raise ValidationError("The run's dataset was deleted; controls need the same data.")
    random_doc, hand_doc = _control_architectures(run, model)
    base = run.name or f"{run.method} model of run {run.pk}"
    common = dict(actor=actor, dataset=run.dataset, gpu_budget_bytes=run.gpu_budget_bytes, parent=run)
    hand_preset, hand_config = _shared_recipe(run)
    with transaction.atomic():
        # (a) the same method: its retraining settings, preset and overrides exactly as the run's
        random_run = run_create_retrain(genotype=random_doc, preset=run.preset, config=dict(run.config or {}),
                                        name=f"{base}: control (a) random architecture"[:200], **common)
        # (b) a network of no registered method: the shared settings with the run's resolved values
        hand_run = run_create_retrain(genotype=hand_doc, preset=hand_preset, config=hand_config,
                                      name=f"{base}: control (b) hand-designed network"[:200], **common)
        ControlSet.objects.create(project=run.project, model=model, source_run=run, random_run=random_run,
                                  handdesigned_run=hand_run, created_by=actor)
    return [random_run, hand_run]


def is_control_run(run) -> bool:
    from django.db.models import Q

    return ControlSet.objects.filter(Q(random_run=run) | Q(handdesigned_run=run)).exists()


# --------------------------------------------------------------------------- fold ensembles

DEFAULT_FOLDS = 5


def launch_folds(run, actor, *, num_folds: int = DEFAULT_FOLDS):
    """Retrain ``run``'s architecture once per cross-validation fold (fold k validates, the
    others train; the test split stays out of every fold), each an ordinary retraining run on
    the ``gpu`` queue with the run's preset, settings, data and budget. Once all their models
    are registered, the ensemble is assembled and evaluated (``fold_model_registered``)."""
    from webapp.mlmodels.models import TrainedModel
    from webapp.runs.services import run_create_retrain

    from .models import FoldSet

    require_write(actor, run.project)
    try:
        num_folds = int(num_folds)
    except (TypeError, ValueError):
        raise ValidationError("Give the number of folds as a whole number.")
    if not 2 <= num_folds <= 10:
        raise ValidationError("Use between 2 and 10 folds.")
    if run.kind != run.Kind.RETRAIN or run.status != run.Status.SUCCEEDED or not run.genotype:
        raise ValidationError("Folds retrain the architecture of a retraining run that succeeded.")
    model = TrainedModel.objects.filter(run=run).first()
    if model is None:
        raise ValidationError("The run's model is not registered.")
    if FoldSet.objects.filter(model=model).exists():
        raise ValidationError("The folds of this model were launched already.")
    if run.dataset is None:
        raise ValidationError("The run's dataset was deleted; the folds need the same data.")
    base = run.name or f"{run.method} model of run {run.pk}"
    with transaction.atomic():
        runs = [run_create_retrain(actor=actor, dataset=run.dataset, genotype=run.genotype, preset=run.preset,
                                   config=dict(run.config or {}) | {"fold": k, "num_folds": num_folds},
                                   gpu_budget_bytes=run.gpu_budget_bytes, parent=run,
                                   name=f"{base}: fold {k + 1} of {num_folds}"[:200])
                for k in range(num_folds)]
        fold_set = FoldSet.objects.create(project=run.project, model=model, source_run=run, num_folds=num_folds,
                                          run_ids=[r.pk for r in runs], created_by=actor)
    return fold_set


def fold_model_registered(model) -> None:
    """A model was registered: when it completes a fold set, queue the ensemble's assembly."""
    from .models import FoldSet

    for fold_set in FoldSet.objects.filter(status=FoldSet.Status.TRAINING):
        if model.run_id in fold_set.run_ids:
            _queue_ensemble_if_complete(fold_set.pk)


def _fold_models(fold_set):
    from webapp.mlmodels.models import TrainedModel

    by_run = {m.run_id: m for m in TrainedModel.objects.filter(run_id__in=fold_set.run_ids)}
    return [by_run.get(run_id) for run_id in fold_set.run_ids]


def _queue_ensemble_if_complete(fold_set_id: int) -> None:
    from .models import FoldSet
    from .tasks import assemble_ensemble

    with transaction.atomic():
        fold_set = FoldSet.objects.select_for_update().filter(pk=fold_set_id).first()
        if fold_set is None or fold_set.status != FoldSet.Status.TRAINING:
            return
        if all(m is not None for m in _fold_models(fold_set)):
            enqueue_on_commit(assemble_ensemble, fold_set.pk)


def fold_set_failures(fold_set) -> list[str]:
    """Why a fold set cannot finish: its fold runs that failed, were cancelled or deleted."""
    from webapp.runs.models import Run

    runs = {r.pk: r for r in Run.objects.filter(pk__in=fold_set.run_ids)}
    problems = []
    for k, run_id in enumerate(fold_set.run_ids):
        run = runs.get(run_id)
        if run is None:
            problems.append(f"fold {k + 1}: its run was deleted")
        elif run.status in (run.Status.FAILED, run.Status.CANCELLED):
            problems.append(f"fold {k + 1}: run #{run.pk} {run.status}")
    return problems


def ensemble_run(*, fold_set_id: int):
    """Write the ensemble folder of a complete fold set, decide its post-processing on each
    fold's validation cases and score it on the test split (the Celery task calls this)."""
    import uuid

    from django.conf import settings

    from nasengine import api
    from nasengine.data.errors import DataError
    from nasengine.inference.bundle import BundleError

    from .models import FoldSet

    with transaction.atomic():
        fold_set = FoldSet.objects.select_for_update(of=("self",)).select_related("model", "model__dataset").filter(
            pk=fold_set_id).first()
        if fold_set is None or fold_set.is_final:
            return fold_set
        if fold_set.status == FoldSet.Status.TRAINING:
            fold_set.transition(FoldSet.Status.RUNNING)
        if not fold_set.ensemble_dir:
            fold_set.ensemble_dir = f"ensembles/{uuid.uuid4()}"
            fold_set.save(update_fields=["ensemble_dir"])
    members = _fold_models(fold_set)

    def progress(message: str) -> None:
        FoldSet.objects.filter(pk=fold_set_id).update(progress=str(message)[:300])

    def fail(text: str):
        with transaction.atomic():
            current = FoldSet.objects.select_for_update().get(pk=fold_set_id)
            if not current.is_final:
                current.progress = ""
                current.save(update_fields=["progress"])
                current.transition(FoldSet.Status.FAILED, error=text[:4000])
            return current

    if any(m is None for m in members):
        return fail("A fold's model is missing; the ensemble cannot be made.")
    try:
        out = Path(settings.MEDIA_ROOT) / fold_set.ensemble_dir
        api.make_ensemble(out, [m.bundle_path for m in members], folds=list(range(len(members))))
        data_dir = _data_dir(fold_set.model)
        progress("deciding the largest-region clean-up on each fold's validation cases")
        api.decide_postprocessing(out, data_dir, progress=progress)
        report = api.evaluate(out, data_dir, progress=progress)
    except (DataError, BundleError) as error:
        return fail(f"The ensemble could not be evaluated: {getattr(error, 'problem', None) or error}")
    except Exception as error:  # noqa: BLE001 - recorded, logged with its trace
        log.error("Ensemble %s failed:\n%s", fold_set_id, traceback.format_exc())
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return fail(f"The ensemble failed: {type(error).__name__}: {first}")
    with transaction.atomic():
        current = FoldSet.objects.select_for_update().get(pk=fold_set_id)
        if current.is_final:
            return current
        current.report = report
        current.mean_dice = report.get("mean_dice")
        current.progress = ""
        current.save(update_fields=["report", "mean_dice", "progress"])
        current.transition(FoldSet.Status.SUCCEEDED)
    return current


# --------------------------------------------------------------------------- the queue sweep

def waiting_jobs(before) -> list[tuple[str, int]]:
    """(task name, id) of this app's jobs the database holds as waiting since before ``before``,
    for the queue sweep (``webapp.common.sweep``): queued evaluations, and fold sets whose
    folds are all registered but whose ensemble was never assembled."""
    from .models import FoldSet
    from .tasks import assemble_ensemble, run_evaluation

    jobs = [(run_evaluation.name, pk) for pk in Evaluation.objects.filter(
        status=Status.QUEUED, status_changed_at__lte=before).values_list("pk", flat=True)]
    for fold_set in FoldSet.objects.filter(status=FoldSet.Status.TRAINING, status_changed_at__lte=before):
        if all(m is not None for m in _fold_models(fold_set)):
            jobs.append((assemble_ensemble.name, fold_set.pk))
    return jobs
