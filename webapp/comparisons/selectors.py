"""Reads for the comparison workspace and the per-dataset leaderboard.

An *item* is what the researcher compares: a run (a search or a retraining) or a registered
model (whose training is its retraining run). Every read goes through project membership.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from webapp.mlmodels.models import TrainedModel
from webapp.mlmodels.services import method_title, model_figures
from webapp.projects.access import require_member
from webapp.runs.models import Run

from .curves import RunCurves, run_curves

#: At most this many items side by side (the charts stay readable, the page fast).
MAX_ITEMS = 12
#: Opened with nothing picked: the newest models (else the newest runs), not an empty page.
DEFAULT_ITEMS = 4


@dataclass
class Metrics:
    """Per-class Dice of an item and where the numbers come from."""

    #: "test" (held-out cases, webapp.evaluations) or "validation" (the validation split).
    source: str = "validation"
    per_class: dict[str, float | None] = field(default_factory=dict)
    mean: float | None = None
    #: Test split: further metrics per class {"hd95_mm": {...}, "nsd": {...}} and the case count.
    extra: dict[str, dict[str, float | None]] = field(default_factory=dict)
    n_cases: int | None = None


@dataclass
class Item:
    key: str  # "run-3" / "model-2": unique on the page
    kind: str  # "search" / "retrain" / "model"
    pk: int
    name: str
    label: str  # the name, made unique among the picked items (chart series are keyed by it)
    url: str
    run: Run
    model: TrainedModel | None
    method: str
    method_title: str
    preset: str
    seed: int
    dataset_name: str
    dataset_id: int | None
    status: str
    figures: dict
    estimate_bytes: int
    budget_bytes: int
    search_seconds: float | None
    training_seconds: float | None
    metrics: Metrics
    curves: RunCurves
    genotype: dict | None

    @property
    def kind_label(self) -> str:
        return {"search": "Search run", "retrain": "Retraining run", "model": "Model"}[self.kind]

    @property
    def peak_memory_bytes(self) -> int | None:
        return self.curves.peak_memory_bytes

    @property
    def memory_kind(self) -> str:
        return self.curves.memory_kind


# -- what can be picked ---------------------------------------------------------------------------
def pickable_runs(*, user, project) -> QuerySet[Run]:
    require_member(user, project)
    return (Run.objects.filter(project=project).select_related("dataset")
            .defer("genotype", "estimate_details", "resolved_config").order_by("-created_at", "-id"))


def pickable_models(*, user, project) -> QuerySet[TrainedModel]:
    require_member(user, project)
    return TrainedModel.objects.filter(project=project).select_related("dataset", "run").order_by("-created", "-id")


def _ids(values, what: str) -> list[int]:
    ids = []
    for value in values:
        text = str(value).strip()
        if not text:
            continue
        if not text.isascii() or not text.isdigit() or len(text) > 18:  # 18 digits: within any database's integer
            raise ValidationError(f"{what} ids are whole numbers; {text[:20]!r} is not one.")
        if int(text) not in ids:
            ids.append(int(text))
    return ids


def pick(*, user, project, run_ids=(), model_ids=()) -> list[Item]:
    """The items asked for (``run_ids``, ``model_ids`` as sent): models first, then runs, each in
    the order asked; the newest
    models (else runs) when nothing is asked for. ValidationError names an id that is not a
    run or model of this project, or too many ids."""
    runs_wanted = _ids(run_ids, "Run")
    models_wanted = _ids(model_ids, "Model")
    if len(runs_wanted) + len(models_wanted) > MAX_ITEMS:
        raise ValidationError(f"Compare at most {MAX_ITEMS} runs and models at once.")
    runs = {r.pk: r for r in Run.objects.filter(project=project, pk__in=runs_wanted).select_related("dataset", "source_run")}
    models = {m.pk: m for m in pickable_models(user=user, project=project).filter(pk__in=models_wanted)
              .select_related("run__source_run")}
    missing = [f"run #{i}" for i in runs_wanted if i not in runs] + [f"model #{i}" for i in models_wanted if i not in models]
    if missing:
        raise ValidationError(f"This project has no {', '.join(missing)}.")
    if not runs_wanted and not models_wanted:
        latest = list(pickable_models(user=user, project=project).select_related("run__source_run")[:DEFAULT_ITEMS])
        if latest:
            return _items([], latest)
        require_member(user, project)
        return _items(list(Run.objects.filter(project=project).select_related("dataset", "source_run")
                           .order_by("-created_at", "-id")[:DEFAULT_ITEMS]), [])
    require_member(user, project)
    return _items([runs[i] for i in runs_wanted], [models[i] for i in models_wanted])


# -- building the items ---------------------------------------------------------------------------
def _run_figures(run: Run) -> dict:
    """The architecture's figures as the engine stored them with the genotype (``derived``)."""
    return dict((run.genotype or {}).get("derived") or {})


def _seconds(run: Run | None) -> float | None:
    if run is None or run.started_at is None or run.finished_at is None and run.status != Run.Status.RUNNING:
        return None
    return run.duration_seconds


def _search_of(run: Run) -> Run | None:
    return run if run.kind == Run.Kind.SEARCH else run.source_run


def test_summary(model: TrainedModel) -> dict | None:
    """The held-out test-split summary of ``model`` from ``webapp.evaluations`` when that app
    offers ``selectors.summary_for_model`` (it is written in parallel; until then: None)."""
    if importlib.util.find_spec("webapp.evaluations.selectors") is None:
        return None
    from webapp.evaluations import selectors as evaluations

    reader = getattr(evaluations, "summary_for_model", None)
    return reader(model) if reader is not None else None


def _mean_of(entry) -> float | None:
    if isinstance(entry, dict):
        entry = entry.get("mean")
    return float(entry) if isinstance(entry, (int, float)) else None


def metrics_from_summary(summary: dict | None) -> Metrics | None:
    """Test metrics from ``webapp.evaluations.selectors.summary_for_model`` (``{"n_cases",
    "mean_dice", "classes": {name: {"dice_mean", "hd95_mm_mean", "nsd_mean", ...}}}``) or from a
    raw nasengine.evaluation report (``{"summary": {name: {metric: {"mean", ...}}}, "cases"}``);
    None when it holds no Dice."""
    if not isinstance(summary, dict):
        return None
    metrics = Metrics(source="test")
    classes = summary.get("classes")
    if isinstance(classes, dict):
        for name, entry in classes.items():
            if isinstance(entry, dict) and "dice_mean" in entry:
                metrics.per_class[str(name)] = _mean_of(entry["dice_mean"])
                for key in ("hd95_mm", "nsd"):
                    if f"{key}_mean" in entry:
                        metrics.extra.setdefault(key, {})[str(name)] = _mean_of(entry[f"{key}_mean"])
    per = summary.get("summary")
    if not metrics.per_class and isinstance(per, dict):
        for name, entry in per.items():
            if not isinstance(entry, dict) or "dice" not in entry:
                continue
            metrics.per_class[str(name)] = _mean_of(entry["dice"])
            for key in ("hd95_mm", "nsd"):
                if key in entry:
                    metrics.extra.setdefault(key, {})[str(name)] = _mean_of(entry[key])
    if not metrics.per_class:
        return None
    values = [v for v in metrics.per_class.values() if v is not None]
    mean = summary.get("mean_dice")
    metrics.mean = float(mean) if isinstance(mean, (int, float)) else (sum(values) / len(values) if values else None)
    cases = summary.get("cases")
    if isinstance(summary.get("n_cases"), int):
        metrics.n_cases = summary["n_cases"]
    elif isinstance(cases, list):
        metrics.n_cases = len({c.get("case") for c in cases if isinstance(c, dict)}) or len(cases)
    return metrics


def _validation_metrics(run: Run, model: TrainedModel | None, curves: RunCurves) -> Metrics:
    if model is not None:
        return Metrics(per_class=dict(model.val_dice or {}), mean=model.mean_dice)
    return Metrics(per_class=dict(curves.last_validation), mean=run.best_mean_dice if not curves.last_validation
                   else curves.last_validation_mean)


def item_metrics(run: Run, model: TrainedModel | None, curves: RunCurves) -> Metrics:
    """Test metrics where the model has an evaluation, else validation Dice."""
    if model is not None:
        tested = metrics_from_summary(test_summary(model))
        if tested is not None:
            return tested
    return _validation_metrics(run, model, curves)


def _item(run: Run, model: TrainedModel | None) -> Item:
    from django.urls import reverse

    curves = run_curves(run)
    dataset = model.dataset if model is not None else run.dataset
    search = _search_of(run)
    return Item(
        key=f"model-{model.pk}" if model is not None else f"run-{run.pk}",
        kind="model" if model is not None else run.kind,
        pk=model.pk if model is not None else run.pk,
        name=model.name if model is not None else str(run),
        label="",
        url=reverse("mlmodels:detail", kwargs={"pk": model.pk}) if model is not None else reverse("runs:detail", kwargs={"pk": run.pk}),
        run=run, model=model,
        method=(model.method if model is not None else "") or run.method,
        method_title=method_title((model.method if model is not None else "") or run.method),
        preset=run.preset, seed=run.seed,
        dataset_name=dataset.name if dataset is not None else "deleted",
        dataset_id=dataset.pk if dataset is not None else None,
        status=run.status,
        figures=model_figures(model) if model is not None else _run_figures(run),
        estimate_bytes=run.estimate_bytes, budget_bytes=run.gpu_budget_bytes,
        search_seconds=_seconds(search),
        training_seconds=_seconds(run) if run.kind == Run.Kind.RETRAIN else None,
        metrics=item_metrics(run, model, curves),
        curves=curves,
        genotype=run.genotype,
    )


def _items(runs: list[Run], models: list[TrainedModel]) -> list[Item]:
    items = [_item(m.run, m) for m in models] + [_item(r, None) for r in runs]
    seen: dict[str, int] = {}
    for item in items:
        seen[item.name] = seen.get(item.name, 0) + 1
    for item in items:
        item.label = item.name if seen[item.name] == 1 else f"{item.name} ({item.kind_label.lower()} #{item.pk})"
    return items


def class_names(items: list[Item]) -> list[str]:
    """Every class any item has a metric for, in first-seen order."""
    names: list[str] = []
    for item in items:
        for name in item.metrics.per_class:
            if name not in names:
                names.append(name)
    return names


def metric_source(items: list[Item]) -> str:
    """"test", "validation" or "mixed": what the per-class table shows."""
    sources = {item.metrics.source for item in items}
    return sources.pop() if len(sources) == 1 else ("mixed" if sources else "validation")


# -- the leaderboard ------------------------------------------------------------------------------
#: Sort keys of the leaderboard -> (label, value of a row, descending first?), in column order.
LEADERBOARD_SORTS: dict[str, tuple[str, object, bool]] = {
    "name": ("Model", lambda r: r.name.lower(), False),
    "method": ("Method", lambda r: r.method_title.lower(), False),
    "preset": ("Preset", lambda r: r.preset, False),
    "parameters": ("Parameters", lambda r: r.figures.get("parameters"), False),
    "flops": ("FLOPs", lambda r: r.figures.get("flops"), False),
    "training": ("Training time", lambda r: r.training_seconds, False),
    "search": ("Search time", lambda r: r.search_seconds, False),
    "dice": ("Mean Dice", lambda r: r.metrics.mean, True),
    "created": ("Registered", lambda r: r.model.created, True),
}


def leaderboard(*, user, dataset, sort: str = "-dice") -> list[Item]:
    """Every model trained on ``dataset`` (whatever its method), as items, sorted by ``sort``
    (a key of LEADERBOARD_SORTS, "-" first for descending); rows without the value go last."""
    require_member(user, dataset.project)
    key = sort.lstrip("-")
    if key not in LEADERBOARD_SORTS:
        raise ValidationError(f"Sort by one of: {', '.join(LEADERBOARD_SORTS)}.")
    models = list(TrainedModel.objects.filter(dataset=dataset).select_related("dataset", "run__source_run", "run__dataset"))
    items = [_leaderboard_item(m) for m in models]
    value = LEADERBOARD_SORTS[key][1]
    present = [i for i in items if value(i) is not None]
    absent = [i for i in items if value(i) is None]
    present.sort(key=value, reverse=sort.startswith("-"))
    return present + absent


def _leaderboard_item(model: TrainedModel) -> Item:
    """An item without curves (the leaderboard shows none; reading events is the costly part)."""
    from django.urls import reverse

    run = model.run
    search = _search_of(run)
    curves = RunCurves()
    return Item(
        key=f"model-{model.pk}", kind="model", pk=model.pk, name=model.name, label=model.name,
        url=reverse("mlmodels:detail", kwargs={"pk": model.pk}), run=run, model=model,
        method=model.method or run.method, method_title=method_title(model.method or run.method),
        preset=run.preset, seed=run.seed, dataset_name=model.dataset.name if model.dataset else "deleted",
        dataset_id=model.dataset_id, status=run.status, figures=model_figures(model),
        estimate_bytes=run.estimate_bytes, budget_bytes=run.gpu_budget_bytes,
        search_seconds=_seconds(search), training_seconds=_seconds(run),
        metrics=item_metrics(run, model, curves), curves=curves, genotype=None,
    )
