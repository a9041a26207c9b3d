"""Writes for registered models."""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import TrainedModel

#: How the methods are written for a researcher (the registry keys are lower-case ids).
METHOD_TITLES = {"dints": "DiNTS", "c2fnas": "C2FNAS", "scnas": "SCNAS", "uxnet": "UXNet", "dast": "DAST"}


def method_title(method: str) -> str:
    return METHOD_TITLES.get((method or "").lower(), method or "model")


def default_model_name(run, method: str = "") -> str:
    """What the model is, e.g. "DiNTS · Liver CT · tiny · seed 0" (method, training data,
    preset, seed); the researcher may rename it."""
    dataset = run.dataset.name if run.dataset_id and run.dataset is not None else "deleted dataset"
    return f"{method_title(method or run.method)} · {dataset} · {run.preset} · seed {run.seed}"[:200]


def _name_from_run(run) -> str:
    """The retraining run's name when the researcher gave it one. Choice: a name that starts
    with "Retrain" is a default of the runs app ("Retrain of <search>", "Retrain #2"), which says
    how the model was made, not what it is; the model then gets :func:`default_model_name`."""
    name = (run.name or "").strip()
    return "" if not name or name.lower().startswith("retrain") else name


def bundle_figures(bundle_dir: Path) -> dict:
    """Parameters, FLOPs and activation memory per sample of a bundle's network at its training
    patch (nasengine.genotype.derive_figures); {} when the bundle cannot tell."""
    from nasengine.genotype import GenotypeError, derive_figures

    try:
        genotype = json.loads((bundle_dir / "genotype.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(genotype, dict):
        return {}
    try:
        plan = json.loads((bundle_dir / "plan.json").read_text(encoding="utf-8"))
        patch = plan.get("patch_size")
        if patch:
            return derive_figures(genotype, patch)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, GenotypeError):
        pass
    # No plan (or one that does not fit): the figures the engine stored with the genotype.
    return dict(genotype.get("derived") or {})


def model_figures(model: TrainedModel) -> dict:
    """The model's figures, computed once (models registered before the field existed get them
    on first use)."""
    if not model.figures:
        figures = bundle_figures(model.bundle_path)
        if figures:
            model.figures = figures
            TrainedModel.objects.filter(pk=model.pk).update(figures=figures)
    return model.figures or {}


def _bundle_info(bundle_dir: Path) -> dict:
    try:
        return json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValidationError(f"The run's output in {bundle_dir.name} is not a model bundle (bundle.json is missing or unreadable).")


@transaction.atomic
def register_model(run, *, name: str = "") -> TrainedModel:
    """Register the bundle a succeeded retraining run wrote as a model; idempotent (one model per run)."""
    existing = TrainedModel.objects.filter(run=run).first()
    if existing is not None:
        return existing
    if run.kind != run.Kind.RETRAIN:
        raise ValidationError("Only a retraining run produces a model.")
    info = _bundle_info(run.bundle_dir)
    validation = info.get("validation") or {}
    exports = info.get("exports") or {}
    model = TrainedModel.objects.create(
        project=run.project,
        name=(name or _name_from_run(run) or default_model_name(run, info.get("method") or run.method))[:200],
        run=run,
        dataset=run.dataset,
        method=info.get("method") or run.method,
        bundle_dir=str(run.bundle_dir.relative_to(Path(settings.MEDIA_ROOT))),
        label_names=info.get("labels") or {},
        val_dice=validation.get("dice") or {},
        mean_dice=validation.get("mean_dice"),
        channel_names=info.get("channel_names") or [],
        exports=exports,
        figures=bundle_figures(run.bundle_dir),
    )
    return model


@transaction.atomic
def model_rename(*, model: TrainedModel, actor, name: str) -> TrainedModel:
    from webapp.projects.access import require_write

    require_write(actor, model.project)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationError({"name": "Give the model a name under 200 characters."})
    model.name = name
    model.save(update_fields=["name"])
    return model


@transaction.atomic
def model_set_colours(*, model: TrainedModel, actor, colours: dict) -> TrainedModel:
    """Set per-class colours (``{"1": "#rrggbb"}``) over the default palette; an empty dict
    goes back to the default. Classes not named keep their colour."""
    from webapp.common.colours import clean_overrides, colour_of, hex_of
    from webapp.projects.access import require_write

    require_write(actor, model.project)
    cleaned = clean_overrides(colours, model.label_names)
    merged = {**(model.label_colours or {}), **cleaned} if colours else {}
    # A class set back to its default colour is no override.
    merged = {k: v for k, v in merged.items() if v != hex_of(colour_of(int(k)))}
    model.label_colours = merged
    model.save(update_fields=["label_colours"])
    return model


@transaction.atomic
def model_delete(*, model: TrainedModel, actor) -> None:
    """Unregister a model. Its bundle stays with its retraining run (deleting the run removes it).
    Refused while predictions or other records still use the model."""
    from django.db.models import ProtectedError

    from webapp.projects.access import require_write

    require_write(actor, model.project)
    try:
        with transaction.atomic():
            model.delete()
    except ProtectedError:
        raise ValidationError("Predictions still use this model; delete them first.")
