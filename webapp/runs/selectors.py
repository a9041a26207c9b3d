"""Reads for runs and their events. Every read goes through project membership."""
from django.db.models import F, QuerySet
from django.http import Http404

from webapp.projects.access import get_for_user, require_member, visible_to

from .models import Run, RunEvent

#: Sort keys of the run list: name -> order_by fields.
SORTS = {
    "created": ["-created_at", "-id"],
    "status": ["status", "-created_at"],
    "method": ["method", "-created_at"],
    "dice": [F("best_mean_dice").desc(nulls_last=True), "-created_at"],
    "duration": [F("duration").desc(nulls_last=True), "-created_at"],
}


def run_list(*, user, project=None, kind: str | None = None, sort: str = "created", descending: bool | None = None) -> QuerySet[Run]:
    qs = visible_to(Run.objects.select_related("project", "dataset"), user)
    if project is not None:
        require_member(user, project)
        qs = qs.filter(project=project)
    if kind:
        qs = qs.filter(kind=kind)
    qs = qs.defer("genotype", "estimate_details", "resolved_config").annotate(duration=F("finished_at") - F("started_at"))
    order = SORTS.get(sort.lstrip("-"), SORTS["created"])
    qs = qs.order_by(*order)
    if sort.startswith("-"):
        qs = qs.reverse()
    return qs


def run_get(*, user, pk) -> Run:
    return get_for_user(Run.objects.select_related("project", "dataset", "source_run", "parent"), user, pk)


def run_get_or_none(*, user, pk) -> Run | None:
    try:
        return run_get(user=user, pk=pk)
    except Http404:
        return None


def run_events(*, run: Run, after: int = 0, limit: int | None = None) -> QuerySet[RunEvent]:
    qs = RunEvent.objects.filter(run=run, seq__gt=max(0, int(after))).order_by("seq")
    return qs[:limit] if limit else qs


def latest_event(*, run: Run, type: str) -> RunEvent | None:
    return RunEvent.objects.filter(run=run, type=type).order_by("-seq").first()


def architectures(*, user, project) -> QuerySet[Run]:
    """Runs of a project that hold a final architecture (succeeded searches, retrains)."""
    require_member(user, project)
    return visible_to(Run.objects.filter(project=project, genotype__isnull=False), user).defer("estimate_details").order_by("-created_at")


#: How many recent finished runs a step-time measurement looks at.
STEP_TIME_RUNS = 20


def measured_step_seconds(*, method: str, kind: str, patch_size, device: str | None = None) -> dict | None:
    """Seconds per step measured on a worker: the most recent finished (succeeded or cancelled)
    run of this method and kind at this patch size (on ``device``'s kind, ``cuda`` or ``cpu``,
    when given), from its stored step events: (last step's time - first step's time) / (steps
    between them). Returns ``{"seconds_per_step", "run", "worker", "device", "steps"}``, or None
    when no such run has two step events (nothing measured yet).

    Choice: measured from finished runs' own step events (no calibration job), so the figure is
    what a real run of these settings took on a real worker, including data loading and
    validation pauses.
    """
    from django.db.models import Count, Max, Min

    patch = [int(s) for s in patch_size] if patch_size else None
    candidates = (Run.objects.filter(method=method, kind=kind, status__in=[Run.Status.SUCCEEDED, Run.Status.CANCELLED])
                  .only("pk", "resolved_config", "worker").order_by("-finished_at")[:STEP_TIME_RUNS])
    for run in candidates:
        if patch is not None and [int(s) for s in (run.resolved_config or {}).get("patch_size") or []] != patch:
            continue
        started = RunEvent.objects.filter(run=run, type="run_started").order_by("-seq").first()
        run_device = str((started.payload or {}).get("device") or "") if started else ""
        if device and not run_device.startswith(device.split(":")[0]):
            continue
        figures = RunEvent.objects.filter(run=run, type="step").aggregate(first=Min("time"), last=Max("time"),
                                                                           n=Count("id"))
        if not figures["n"] or figures["n"] < 2 or figures["last"] <= figures["first"]:
            continue
        return {"seconds_per_step": (figures["last"] - figures["first"]) / (figures["n"] - 1), "run": run.pk,
                "worker": run.worker, "device": run_device or "unknown", "steps": figures["n"]}
    return None
