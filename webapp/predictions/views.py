"""Prediction pages: predict with a model (upload or pick cases), the result viewer, downloads."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from webapp.common.colours import legend
from webapp.common.uploads import max_upload_bytes, upload_too_large
from webapp.mlmodels.selectors import model_get, model_list
from webapp.mlmodels.services import model_set_colours
from webapp.projects.access import require_write, role_of
from webapp.projects.models import WRITE_ROLES

from . import compatibility, selectors, services
from .models import Prediction

VIEWER_MODULE = "vendor/niivue/niivue.js"


def _case_choices(model, in_channels: int):
    """The pickable cases grouped by dataset, the model's own training data first; each group
    says why its cases may not suit the model (``warnings``)."""
    groups: dict = {}
    for case in selectors.pickable_cases(model=model):
        groups.setdefault(case.dataset_id, {"dataset": case.dataset, "cases": []})["cases"].append(case)
    choices = []
    for dataset_id, group in groups.items():
        dataset, cases = group["dataset"], group["cases"]
        spacing = compatibility.training_spacing(dataset) or cases[0].spacing
        choices.append({
            "dataset_id": dataset_id, "dataset_name": dataset.name, "cases": cases,
            "training_data": dataset_id == model.dataset_id,
            "warnings": compatibility.warnings_for(model, n_channels=cases[0].n_channels, spacing=spacing,
                                                   dataset=dataset, in_channels=in_channels),
        })
    choices.sort(key=lambda g: not g["training_data"])
    return choices


def volume_text(ml) -> str:
    """A volume in mL to a sensible precision. Choice: about three significant digits (a
    label map is only as exact as its voxels): 1,516 · 45.2 · 3.07 · 0.052; none: "—"."""
    if not isinstance(ml, (int, float)):
        return "—"
    if ml == 0:
        return "0"
    if abs(ml) >= 100:
        return f"{ml:,.0f}"
    if abs(ml) >= 10:
        return f"{ml:.1f}"
    if abs(ml) >= 1:
        return f"{ml:.2f}"
    return f"{ml:.2g}"


def _volume_rows(prediction, colours) -> list[dict]:
    """The predicted volume per class, with the reference label's beside it where there is one."""
    reference = {r["value"]: r for r in selectors.reference_volumes(prediction)}
    hexes = {c["value"]: c["hex"] for c in colours}
    rows = []
    for v in prediction.volumes or []:
        ref = reference.get(v["value"])
        rows.append({**v, "hex": hexes.get(v["value"], "#cccccc"), "ml_text": volume_text(v.get("ml")),
                     "reference_ml": ref["ml"] if ref else None,
                     "reference_text": volume_text(ref["ml"]) if ref else None})
    return rows


@login_required
def prediction_list(request):
    models = model_list(user=request.user)
    writable = {m.project_id for m in models if role_of(request.user, m.project) in WRITE_ROLES}
    return render(request, "predictions/list.html", {
        "predictions": selectors.prediction_list(user=request.user)[:200],
        "models": models, "writable_projects": writable,
    })


@login_required
@require_http_methods(["GET", "POST"])
def prediction_create(request, model_pk):
    model = model_get(user=request.user, pk=model_pk)
    require_write(request.user, model.project)
    in_channels = services.model_in_channels(model)
    context = {
        "model": model, "project": model.project, "legend": legend(model.label_names, model.label_colours),
        "in_channels": in_channels, "case_groups": _case_choices(model, in_channels),
        "max_upload_bytes": max_upload_bytes(), "recent": selectors.prediction_list(user=request.user, model=model)[:20],
        "errors": [], "ensemble": services.model_ensemble(model),
        "options": {"overlap": "0.5", "mirror": False, "postprocess": "auto", "use_ensemble": False},
        "postprocess_choices": Prediction.Postprocess.choices, "attention_sites": [{**s, "label": attention_label(s)} for s in services.model_attention_sites(model)],
    }
    if request.method == "POST":
        context["options"] = {"overlap": request.POST.get("overlap", "0.5")[:40],
                              "mirror": bool(request.POST.get("mirror")),
                              "postprocess": request.POST.get("postprocess", "auto"),
                              "use_ensemble": bool(request.POST.get("use_ensemble"))}
        if upload_too_large(request):
            context["errors"] = ["The upload is larger than the limit."]
            return render(request, "predictions/create.html", context, status=413)
        try:
            cases = [selectors.case_get_for_model(model=model, pk=pk) for pk in request.POST.getlist("cases")]
            created = services.prediction_create(model=model, actor=request.user,
                                                 files=request.FILES.getlist("files"), cases=cases,
                                                 attention=request.POST.getlist("attention"),
                                                 options=_form_options(request.POST))
        except ValidationError as error:
            context["errors"] = error.messages
            return render(request, "predictions/create.html", context, status=400)
        messages.success(request, f"{len(created)} volume(s) queued for prediction.")
        if len(created) == 1:
            return redirect("predictions:detail", pk=created[0].pk)
        return redirect("predictions:create", model_pk=model.pk)
    return render(request, "predictions/create.html", context)


def _form_options(post) -> dict:
    """The inference settings of the form; an unticked checkbox sends nothing (= off)."""
    return {"overlap": post.get("overlap"), "mirror": post.get("mirror", "false"),
            "postprocess": post.get("postprocess"), "use_ensemble": post.get("use_ensemble", "false")}


def attention_label(site: dict) -> str:
    """How a transformer op is named in the viewer: its lattice layer and level, and its edge."""
    return f"layer {site.get('layer')}, level {site.get('level')} ({site['source']} \u2192 {site['target']})"


def _attention_entries(prediction) -> list[dict]:
    return [{"id": m["id"], "label": attention_label(m), "file": m["file"], "min": m.get("min"),
             "max": m.get("max"), "url": reverse("predictions:attention", kwargs={"pk": prediction.pk, "name": m["file"]})}
            for m in prediction.attention_maps or []]


@login_required
@require_http_methods(["GET", "POST"])
def prediction_detail(request, pk):
    """The result viewer. POST ``action=rename`` (``name``; blank: the default) renames the
    prediction; ``action=colours`` (``colour_<value>`` = ``#rrggbb``) saves the label colours on
    its model (writers only; viewers may try colours in the viewer without saving)."""
    prediction = selectors.prediction_get(user=request.user, pk=pk)
    if request.method == "POST":
        _detail_post(request, prediction)
        return redirect("predictions:detail", pk=prediction.pk)
    model = prediction.model
    colours = legend(model.label_names, model.label_colours)
    attention = _attention_entries(prediction) if prediction.status == "succeeded" else []
    viewer_config = {
        "niivueUrl": static(VIEWER_MODULE),
        "inputUrl": reverse("predictions:input", kwargs={"pk": prediction.pk}),
        "labelUrl": reverse("predictions:result", kwargs={"pk": prediction.pk}),
        "colours": colours,
        "opacity": 0.6,
        "crosshair": True,
        "attention": attention,
        "attentionOpacity": 0.5,
    }
    case = prediction.source_case
    warnings = compatibility.warnings_for(model, n_channels=prediction.n_channels, spacing=prediction.spacing,
                                          dataset=case.dataset if case is not None else None,
                                          in_channels=services.model_in_channels(model))
    volumes = _volume_rows(prediction, colours) if prediction.status == "succeeded" else []
    return render(request, "predictions/detail.html", {
        "prediction": prediction, "model": model, "project": prediction.project,
        "legend": colours, "viewer_config": viewer_config, "attention_maps": attention,
        "volumes": volumes, "total_ml": volume_text(prediction.total_ml),
        "has_reference": any(v["reference_ml"] is not None for v in volumes),
        "reference_total": volume_text(sum(v["reference_ml"] or 0 for v in volumes)),
        "can_write": role_of(request.user, prediction.project) in WRITE_ROLES,
        "viewer_installed": finders.find(VIEWER_MODULE) is not None, "viewer_module": VIEWER_MODULE,
        "warnings": warnings, "progress_text": selectors.plain_progress(prediction.progress),
        "voxel_ml_text": f"{prediction.voxel_volume_ml:.3g}" if prediction.voxel_volume_ml else "—",
    })


def _detail_post(request, prediction) -> None:
    require_write(request.user, prediction.project)  # viewers: 403, whatever they sent
    action = request.POST.get("action", "")
    try:
        if action == "rename":
            prediction.rename(request.POST.get("name", ""))
            messages.success(request, f"The prediction is now called “{prediction.display_name}”.")
        elif action == "colours":
            colours = {key[len("colour_"):]: value for key, value in request.POST.items() if key.startswith("colour_")}
            model_set_colours(model=prediction.model, actor=request.user, colours=colours)
            messages.success(request, f"The label colours were saved for every prediction of “{prediction.model.name}”.")
        elif action == "colours-reset":
            model_set_colours(model=prediction.model, actor=request.user, colours={})
            messages.success(request, "The label colours are back to the default (colour-blind-safe) palette.")
        else:
            messages.error(request, "Nothing to change: unknown action.")
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)


def _file_response(request, pk, which):
    prediction, path, name = selectors.prediction_file(user=request.user, pk=pk, which=which)
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=name,
                            content_type="application/gzip")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def prediction_input(request, pk):
    return _file_response(request, pk, "input")


@login_required
def prediction_result(request, pk):
    return _file_response(request, pk, "result")


@login_required
def prediction_attention(request, pk, name):
    prediction, path, filename = selectors.prediction_attention_file(user=request.user, pk=pk, name=name)
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename,
                            content_type="application/gzip")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def prediction_delete(request, pk):
    prediction = selectors.prediction_get(user=request.user, pk=pk)
    try:
        services.prediction_delete(prediction=prediction, actor=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("predictions:detail", pk=pk)
    messages.success(request, f"“{prediction.display_name}” and its files were deleted.")
    return redirect("predictions:create", model_pk=prediction.model_id)
