"""Model pages: list and detail, with downloads."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.projects.access import role_of
from webapp.projects.models import WRITE_ROLES

from . import selectors, services
from .downloads import bundle_zip_response, network_response


@login_required
def model_list(request):
    return render(request, "mlmodels/list.html", {"models": selectors.model_list(user=request.user)})


@login_required
def model_detail(request, pk):
    model = selectors.model_get(user=request.user, pk=pk)
    labels = sorted(((int(k), v) for k, v in (model.label_names or {}).items()))
    dice = [(value, name, (model.val_dice or {}).get(name)) for value, name in labels if value != 0]
    return render(request, "mlmodels/detail.html", {
        "model": model, "project": model.project, "dice": dice, "network_file": model.network_file,
        "files": selectors.bundle_files(model), "can_write": role_of(request.user, model.project) in WRITE_ROLES,
    })


@login_required
@require_POST
def model_delete(request, pk):
    model = selectors.model_get(user=request.user, pk=pk)
    try:
        services.model_delete(model=model, actor=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("mlmodels:detail", pk=model.pk)
    messages.success(request, "The model was unregistered; its files stay with its retraining run.")
    return redirect("mlmodels:list")


@login_required
def model_bundle(request, pk):
    return bundle_zip_response(selectors.model_get(user=request.user, pk=pk))


@login_required
def model_network(request, pk):
    return network_response(selectors.model_get(user=request.user, pk=pk))
