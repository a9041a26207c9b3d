"""Run pages: list, launch (search / retrain / clone), live dashboard, cancel, architectures."""
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.common.views import add_validation_errors
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.projects.access import require_write, role_of
from webapp.projects.models import WRITE_ROLES
from webapp.projects.selectors import project_get

from . import engine, selectors, services
from .apis import genotype_response, read_genotype_upload
from .consumers import HEARTBEAT_SECONDS
from .models import Run

#: The retrain forms' tick for the controls of issue 12 (webapp.evaluations.services.launch_controls).
CONTROLS_LABEL = "Also train two controls (random architecture, hand-designed U-Net)"
SORT_COLUMNS = [("created", "Started"), ("status", "Status"), ("method", "Method"), ("dice", "Best Dice"), ("duration", "Duration")]


def _can_write(user, project) -> bool:
    return role_of(user, project) in WRITE_ROLES


@login_required
def run_list(request, project_pk):
    project = project_get(user=request.user, pk=project_pk)
    sort = request.GET.get("sort", "created")
    if sort.lstrip("-") not in dict(SORT_COLUMNS):
        sort = "created"
    runs = selectors.run_list(user=request.user, project=project, sort=sort)
    columns = [(key, label, ("-" + key) if sort == key else key, sort.lstrip("-") == key) for key, label in SORT_COLUMNS]
    return render(request, "runs/list.html", {
        "project": project, "runs": runs, "sort": sort, "columns": columns,
        "datasets": dataset_list(user=request.user, project=project).filter(status=Dataset.Status.READY),
        "can_write": _can_write(request.user, project),
    })


def _launch_context(request, dataset, *, kind, run=None, source=None):
    """What the schema-driven launch form needs (the ES module builds the inputs)."""
    initial = {}
    if run is not None:  # clone
        initial = {"method": run.method, "preset": run.preset, "config": run.resolved_config,
                   "gpu_budget_bytes": run.gpu_budget_bytes, "seed": run.seed, "name": f"{run.name} (copy)" if run.name else ""}
    elif source is not None:  # retrain a search
        initial = {"gpu_budget_bytes": source.gpu_budget_bytes, "seed": source.seed}
    if kind == Run.Kind.RETRAIN:
        src = source or (run.source_run if run else None)
        if run is not None:
            create_url = reverse("api:run-clone", kwargs={"pk": run.pk})
        elif source is not None:
            create_url = reverse("api:run-retrain", kwargs={"pk": source.pk})
        else:
            create_url = reverse("api:dataset-retrain", kwargs={"pk": dataset.pk})
    else:
        src = None
        create_url = reverse("api:run-clone", kwargs={"pk": run.pk}) if run is not None else reverse("api:project-runs", kwargs={"pk": dataset.project_id})
    catalogue_url = reverse("api:methods")
    retrain_method = None
    if kind == Run.Kind.RETRAIN:
        # The retraining settings and presets are those of the architecture's method.
        genotype = (run.genotype if run is not None else None) or (src.genotype if src is not None else None)
        retrain_method = engine.retrain_method(genotype)
        if retrain_method:
            catalogue_url += "?" + urlencode({"method": retrain_method})
    from webapp.common import workers

    connected = workers.connected_workers()
    gpu_up = workers.gpu_worker_up(connected)
    return {
        "dataset": dataset, "project": dataset.project, "kind": kind, "clone_of": run, "source": src,
        "launch": {
            # The preset that suits the connected workers: with no CUDA worker up, the method's
            # smallest CPU-suitable preset (``cpu`` where the method has one, else ``tiny``);
            # with one, the method's own default. Searches preselect DiNTS (the method the
            # README and the researcher loop lead with), not the alphabetically first C2FNAS.
            "workers": {"gpu_worker_up": gpu_up, "connected": workers.gpu_queue_workers(connected)},
            "preferred_presets": [] if gpu_up else ["cpu", "tiny"],
            "default_method": "dints" if "dints" in engine.method_names() else (engine.method_names() or [""])[0],
            "kind": kind, "dataset": dataset.pk, "project": dataset.project_id,
            "catalogue_url": catalogue_url, "retrain_method": retrain_method,
            "defaults_url": reverse("api:dataset-run-defaults", kwargs={"pk": dataset.pk}),
            "estimate_url": reverse("api:dataset-estimate", kwargs={"pk": dataset.pk}),
            "create_url": create_url, "clone": run is not None,
            # Retrain estimates and defaults read the genotype of this run:
            "source_run": run.pk if (run is not None and kind == Run.Kind.RETRAIN) else (src.pk if src is not None else None),
            "initial": initial,
        },
        "controls_label": CONTROLS_LABEL,
    }


@login_required
def run_new(request, dataset_pk):
    dataset = dataset_get(user=request.user, pk=dataset_pk)
    require_write(request.user, dataset.project)
    if dataset.status != Dataset.Status.READY:
        messages.error(request, "Searches need a ready dataset.")
        return redirect("datasets:detail", pk=dataset.pk)
    return render(request, "runs/launch.html", _launch_context(request, dataset, kind=Run.Kind.SEARCH))


@login_required
def run_clone(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    require_write(request.user, run.project)
    return render(request, "runs/launch.html", _launch_context(request, run.dataset, kind=run.kind, run=run))


@login_required
def run_retrain(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    require_write(request.user, run.project)
    if run.kind != Run.Kind.SEARCH or run.status != Run.Status.SUCCEEDED or not run.genotype:
        messages.error(request, "Only a search that succeeded has an architecture to retrain.")
        return redirect("runs:detail", pk=run.pk)
    return render(request, "runs/launch.html", _launch_context(request, run.dataset, kind=Run.Kind.RETRAIN, source=run))


@login_required
def run_detail(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    model = getattr(run, "trained_model", None) if run.kind == Run.Kind.RETRAIN else None
    return render(request, "runs/detail.html", {
        "run": run, "project": run.project, "model": model, "can_write": _can_write(request.user, run.project),
        "budget_gb": engine.format_gb(run.gpu_budget_bytes), "estimate_gb": engine.format_gb(run.estimate_bytes),
        "dashboard": {
            "run": run.pk, "kind": run.kind, "status": run.status,
            "ws_path": f"/ws/runs/{run.pk}/", "events_url": reverse("api:run-events", kwargs={"pk": run.pk}),
            "api_url": reverse("api:run", kwargs={"pk": run.pk}),
            "heartbeat_ms": HEARTBEAT_SECONDS * 1000,
            "budget_bytes": run.gpu_budget_bytes, "estimate_bytes": run.estimate_bytes,
            # step, total_steps, stage, candidate, overall fraction and eta_seconds (see events.next_progress)
            "progress": run.progress or {},
            "labels": {str(k): v for k, v in (run.dataset.labels or {}).items()},
        },
    })


@login_required
@require_POST
def run_cancel(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    try:
        services.run_cancel(actor=request.user, run=run)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, "Cancel requested: the run stops after its current step and keeps a checkpoint.")
    return redirect("runs:detail", pk=run.pk)


@login_required
@require_POST
def run_resume(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    try:
        services.run_resume(actor=request.user, run=run)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, "Resumed: the run is queued and continues from its last checkpoint.")
    return redirect("runs:detail", pk=run.pk)


@login_required
@require_POST
def run_delete(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    project_pk = run.project_id
    try:
        services.run_delete(actor=request.user, run=run)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("runs:detail", pk=run.pk)
    messages.success(request, "The run was deleted.")
    return redirect("runs:list", project_pk=project_pk)


def _figures(run: Run) -> dict | None:
    from nasengine.genotype import GenotypeError, derive_figures

    if not run.genotype:
        return None
    patch = (run.resolved_config or {}).get("patch_size")
    if run.kind == Run.Kind.RETRAIN:
        patch = engine.retrain_patch(run.dataset, run.genotype, run.resolved_config or {})
    try:
        return derive_figures(run.genotype, patch) if patch else (run.genotype.get("derived") or None)
    except (GenotypeError, ValueError, TypeError):
        return run.genotype.get("derived") or None


def _architecture_summary(run: Run) -> dict:
    g = run.genotype or {}
    nodes = g.get("nodes", [])
    edges = g.get("edges", [])
    ops: dict[str, int] = {}
    for e in edges:
        ops[e.get("op", "?")] = ops.get(e.get("op", "?"), 0) + 1
    return {"nodes": len([n for n in nodes if n.get("active", True)]), "edges": len(edges), "ops": sorted(ops.items())}


@login_required
def run_architecture(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    return render(request, "runs/architecture.html", {
        "run": run, "project": run.project, "figures": _figures(run), "summary": _architecture_summary(run),
        "can_write": _can_write(request.user, run.project),
    })


@login_required
def run_genotype_download(request, pk):
    run = selectors.run_get(user=request.user, pk=pk)
    if not run.genotype:
        raise Http404("This run has no architecture yet.")
    return genotype_response(run)


class GenotypeUploadForm(forms.Form):
    genotype_file = forms.FileField(label="Architecture (genotype JSON)")
    preset = forms.ChoiceField(choices=[], initial="tiny")
    gpu_budget_gb = forms.FloatField(label="GPU memory budget (GB)", min_value=0.001, max_value=1e9, initial=8)
    seed = forms.IntegerField(min_value=0, initial=0, required=False)
    name = forms.CharField(max_length=200, required=False)
    controls = forms.BooleanField(required=False, label=CONTROLS_LABEL)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The genotype (and so its method) is known only once the file is read: offer every
        # method's presets; the engine refuses one its method does not have, naming the field.
        self.fields["preset"].choices = [(p, p) for p in engine.all_retrain_presets()]


@login_required
@require_http_methods(["GET", "POST"])
def genotype_upload(request, dataset_pk):
    dataset = dataset_get(user=request.user, pk=dataset_pk)
    require_write(request.user, dataset.project)
    form = GenotypeUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                genotype = read_genotype_upload(form.cleaned_data["genotype_file"])
                run = services.run_create_retrain(
                    actor=request.user, dataset=dataset, genotype=genotype, preset=form.cleaned_data["preset"],
                    seed=form.cleaned_data["seed"], gpu_budget_bytes=int(form.cleaned_data["gpu_budget_gb"] * engine.GB),
                    name=form.cleaned_data["name"], controls=form.cleaned_data["controls"],
                )
            except ValidationError as error:
                if hasattr(error, "error_dict") and "gpu_budget_bytes" in error.error_dict:
                    error = ValidationError({"gpu_budget_gb" if k == "gpu_budget_bytes" else k: v for k, v in error.message_dict.items()})
                if hasattr(error, "error_dict") and "genotype" in error.error_dict:
                    error = ValidationError({"genotype_file" if k == "genotype" else k: v for k, v in error.message_dict.items()})
                add_validation_errors(request, form, error)
            else:
                messages.success(request, "The architecture is valid; retraining is queued.")
                return redirect("runs:detail", pk=run.pk)
    return render(request, "runs/upload_genotype.html", {"dataset": dataset, "project": dataset.project, "form": form}, status=status)


@login_required
def architecture_compare(request, project_pk):
    project = project_get(user=request.user, pk=project_pk)
    choices = selectors.architectures(user=request.user, project=project)
    picked = []
    for key in ("a", "b"):
        value = request.GET.get(key)
        if value:
            run = selectors.run_get(user=request.user, pk=value)
            if run.project_id != project.pk or not run.genotype:
                raise Http404("No such architecture in this project.")
            picked.append({"run": run, "figures": _figures(run), "summary": _architecture_summary(run), "script_id": f"genotype-{key}"})
    return render(request, "runs/compare.html", {"project": project, "choices": choices, "picked": picked,
                                                 "a": request.GET.get("a", ""), "b": request.GET.get("b", "")})


