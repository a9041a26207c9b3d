"""Dataset pages: list, upload, detail (live status), delete."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from webapp.common.uploads import max_upload_bytes, upload_too_large
from webapp.common.views import add_validation_errors
from webapp.projects.access import require_write, role_of
from webapp.projects.models import WRITE_ROLES
from webapp.projects.selectors import project_get

from . import selectors, services
from .forms import UploadForm
from .importing import PAIRING_RULE


@login_required
def dataset_list(request):
    return render(request, "datasets/list.html", {"datasets": selectors.dataset_list(user=request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request, project_pk):
    project = project_get(user=request.user, pk=project_pk)
    require_write(request.user, project)
    context = {"project": project, "pairing_rule": PAIRING_RULE, "max_upload_bytes": max_upload_bytes()}
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)  # files stream to temporary files, up to the cap
        if upload_too_large(request):
            messages.error(request, "The upload is larger than the limit.")
            context["form"] = UploadForm()
            return render(request, "datasets/upload.html", context, status=413)
        if form.is_valid():
            try:
                dataset = services.dataset_upload(
                    project=project, actor=request.user, files=request.FILES.getlist("files"),
                    name=form.cleaned_data["name"], description=form.cleaned_data["description"],
                    labels=form.cleaned_data["labels"], modality=form.cleaned_data["modality"],
                )
            except ValidationError as error:
                add_validation_errors(request, form, error)
            else:
                messages.success(request, "Upload received; the import has started.")
                return redirect("datasets:detail", pk=dataset.pk)
        context["form"] = form
        return render(request, "datasets/upload.html", context, status=400)
    context["form"] = UploadForm()
    return render(request, "datasets/upload.html", context)


@login_required
def dataset_detail(request, pk):
    dataset = selectors.dataset_get(user=request.user, pk=pk)
    role = role_of(request.user, dataset.project)
    fingerprint = dataset.fingerprint or {}
    return render(
        request,
        "datasets/detail.html",
        {
            "dataset": dataset,
            "project": dataset.project,
            "can_write": role in WRITE_ROLES,
            "cases": selectors.case_list(dataset=dataset, split="train"),
            "test_cases": selectors.case_list(dataset=dataset, split="test"),
            "fingerprint": fingerprint,
            "class_fractions": [
                (value, name, (fingerprint.get("class_voxel_fractions") or {}).get(str(value)))
                for value, name in dataset.class_names
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def dataset_delete(request, pk):
    dataset = selectors.dataset_get(user=request.user, pk=pk)
    require_write(request.user, dataset.project)
    if request.method == "POST":
        try:
            services.dataset_delete(dataset=dataset, actor=request.user)
        except ValidationError as error:
            add_validation_errors(request, None, error)
            return redirect("datasets:detail", pk=pk)
        messages.success(request, f"Dataset “{dataset.name}” and its files were deleted.")
        return redirect("projects:detail", pk=dataset.project_id)
    return render(request, "datasets/delete.html", {"dataset": dataset, "project": dataset.project})


@login_required
def case_preview(request, pk, case_pk):
    path = selectors.case_preview_get(user=request.user, dataset_pk=pk, pk=case_pk)
    response = FileResponse(open(path, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
