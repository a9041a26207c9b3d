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
