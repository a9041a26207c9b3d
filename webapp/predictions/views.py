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
from webapp.projects.access import require_write, role_of
from webapp.projects.models import WRITE_ROLES

from . import selectors, services

VIEWER_MODULE = "vendor/niivue/niivue.js"


def _case_choices(model):
    groups: dict = {}
    for case in selectors.pickable_cases(model=model):
        groups.setdefault((case.dataset_id, case.dataset.name), []).append(case)
    return [{"dataset_id": k[0], "dataset_name": k[1], "cases": v} for k, v in groups.items()]


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
    context = {
        "model": model, "project": model.project, "legend": legend(model.label_names),
        "in_channels": services.model_in_channels(model), "case_groups": _case_choices(model),
        "max_upload_bytes": max_upload_bytes(), "recent": selectors.prediction_list(user=request.user, model=model)[:20],
        "errors": [], "attention_sites": [{**s, "label": attention_label(s)} for s in services.model_attention_sites(model)],
    }
    if request.method == "POST":
        if upload_too_large(request):
            context["errors"] = ["The upload is larger than the limit."]
            return render(request, "predictions/create.html", context, status=413)
        try:
            cases = [selectors.case_get_for_model(model=model, pk=pk) for pk in request.POST.getlist("cases")]
            created = services.prediction_create(model=model, actor=request.user,
                                                 files=request.FILES.getlist("files"), cases=cases,
                                                 attention=request.POST.getlist("attention"))
        except ValidationError as error:
            context["errors"] = error.messages
            return render(request, "predictions/create.html", context, status=400)
        messages.success(request, f"{len(created)} volume(s) queued for prediction.")
        if len(created) == 1:
            return redirect("predictions:detail", pk=created[0].pk)
        return redirect("predictions:create", model_pk=model.pk)
    return render(request, "predictions/create.html", context)


def attention_label(site: dict) -> str:
    """How a transformer op is named in the viewer: its lattice layer and level, and its edge."""
    return f"layer {site.get('layer')}, level {site.get('level')} ({site['source']} \u2192 {site['target']})"


def _attention_entries(prediction) -> list[dict]:
    return [{"id": m["id"], "label": attention_label(m), "file": m["file"], "min": m.get("min"),
             "max": m.get("max"), "url": reverse("predictions:attention", kwargs={"pk": prediction.pk, "name": m["file"]})}
            for m in prediction.attention_maps or []]


@login_required
def prediction_detail(request, pk):
    prediction = selectors.prediction_get(user=request.user, pk=pk)
    colours = legend(prediction.model.label_names)
    attention = _attention_entries(prediction) if prediction.status == "succeeded" else []
    viewer_config = {
        "niivueUrl": static(VIEWER_MODULE),
        "inputUrl": reverse("predictions:input", kwargs={"pk": prediction.pk}),
        "labelUrl": reverse("predictions:result", kwargs={"pk": prediction.pk}),
        "colours": colours,
        "opacity": 0.6,
        "attention": attention,
        "attentionOpacity": 0.5,
    }
    return render(request, "predictions/detail.html", {
        "prediction": prediction, "model": prediction.model, "project": prediction.project,
        "legend": colours, "viewer_config": viewer_config, "attention_maps": attention,
        "volumes": prediction.volumes, "total_ml": prediction.total_ml,
        "can_write": role_of(request.user, prediction.project) in WRITE_ROLES,
        "viewer_installed": finders.find(VIEWER_MODULE) is not None, "viewer_module": VIEWER_MODULE,
    })


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
    messages.success(request, f"Prediction of “{prediction.input_name}” and its files were deleted.")
    return redirect("predictions:create", model_pk=prediction.model_id)
