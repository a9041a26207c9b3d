"""Writes for registered models."""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import TrainedModel


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
        name=(name or run.name or f"{info.get('method') or run.method} model from run {run.pk}")[:200],
        run=run,
        dataset=run.dataset,
        method=info.get("method") or run.method,
        bundle_dir=str(run.bundle_dir.relative_to(Path(settings.MEDIA_ROOT))),
        label_names=info.get("labels") or {},
        val_dice=validation.get("dice") or {},
        mean_dice=validation.get("mean_dice"),
        channel_names=info.get("channel_names") or [],
        exports=exports,
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
