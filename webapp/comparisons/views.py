"""The comparison workspace (runs and models of a project side by side) and the per-dataset
leaderboard, with their CSV downloads."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.projects.selectors import project_get

from . import exports, selectors

TABLES = ("overview", "classes")


def _picked(request, project):
    """(items, error message or None); a bad pick shows the message and the picker."""
    try:
        return selectors.pick(user=request.user, project=project, run_ids=request.GET.getlist("run"),
                              model_ids=request.GET.getlist("model")), None
    except ValidationError as error:
        return [], " ".join(error.messages)


def _query(items) -> str:
    parts = [f"{'model' if i.kind == 'model' else 'run'}={i.pk}" for i in items]
    return "&".join(parts)


@login_required
def workspace(request, project_pk):
    project = project_get(user=request.user, pk=project_pk)
    items, error = _picked(request, project)
    classes = selectors.class_names(items)
    picked_runs = {i.pk for i in items if i.kind != "model"}
    picked_models = {i.pk for i in items if i.kind == "model"}
    genotypes = [{"key": i.key, "label": i.label, "script_id": f"genotype-{i.key}", "genotype": i.genotype}
                 for i in items if i.genotype]
    query = _query(items)
    return render(request, "comparisons/workspace.html", {
        "project": project, "items": items, "error": error, "classes": classes,
        "source": selectors.metric_source(items),
        "runs": selectors.pickable_runs(user=request.user, project=project)[:200],
        "models": selectors.pickable_models(user=request.user, project=project)[:200],
        "picked_runs": picked_runs, "picked_models": picked_models,
        "datasets": dataset_list(user=request.user, project=project).filter(status="ready"),
        "charts": exports.chart_data(items), "genotypes": genotypes,
        "overview_csv": reverse("comparisons:csv", kwargs={"project_pk": project.pk, "table": "overview"}) + f"?{query}",
        "classes_csv": reverse("comparisons:csv", kwargs={"project_pk": project.pk, "table": "classes"}) + f"?{query}",
        "defaulted": not request.GET.getlist("run") and not request.GET.getlist("model"),
    }, status=400 if error else 200)


@login_required
def workspace_csv(request, project_pk, table):
    project = project_get(user=request.user, pk=project_pk)
    if table not in TABLES:
        raise Http404("No such table.")
    items, error = _picked(request, project)
    if error:
        return render(request, "comparisons/error.html", {"project": project, "error": error}, status=400)
    if table == "overview":
        headers, rows = exports.overview_table(items)
    else:
        headers, rows = exports.classes_table(items, selectors.class_names(items))
    return exports.csv_response(headers, rows, f"{project.name}-comparison-{table}")


def _leaderboard(request, dataset_pk):
    dataset = dataset_get(user=request.user, pk=dataset_pk)
    sort = request.GET.get("sort", "-dice")
    try:
        return dataset, sort, selectors.leaderboard(user=request.user, dataset=dataset, sort=sort), None
    except ValidationError as error:
        return dataset, "-dice", selectors.leaderboard(user=request.user, dataset=dataset), " ".join(error.messages)


@login_required
def leaderboard(request, dataset_pk):
    dataset, sort, items, error = _leaderboard(request, dataset_pk)
    key = sort.lstrip("-")
    columns = []
    for name, (label, _value, descending_first) in selectors.LEADERBOARD_SORTS.items():
        if name == key:
            following = name if sort.startswith("-") else f"-{name}"
        else:
            following = f"-{name}" if descending_first else name
        columns.append({"key": name, "label": label, "next": following, "active": name == key,
                        "descending": sort.startswith("-")})
    return render(request, "comparisons/leaderboard.html", {
        "dataset": dataset, "project": dataset.project, "items": items, "columns": columns, "sort": sort,
        "error": error, "source": selectors.metric_source(items),
        "compare_query": _query(items[: selectors.MAX_ITEMS]),
        "csv_url": reverse("comparisons:leaderboard-csv", kwargs={"dataset_pk": dataset.pk}) + f"?sort={sort}",
    }, status=400 if error else 200)


@login_required
def leaderboard_csv(request, dataset_pk):
    dataset, _sort, items, error = _leaderboard(request, dataset_pk)
    if error:
        return render(request, "comparisons/error.html", {"project": dataset.project, "error": error}, status=400)
    headers, rows = exports.leaderboard_table(items)
    return exports.csv_response(headers, rows, f"{dataset.name}-leaderboard")
