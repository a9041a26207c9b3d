"""Model pages: list and detail, with downloads."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.common.colours import legend
from webapp.projects.access import require_write, role_of
from webapp.projects.models import WRITE_ROLES

from . import selectors, services
from .downloads import bundle_zip_response, network_response


@login_required
def model_list(request):
    return render(request, "mlmodels/list.html", {"models": selectors.model_list(user=request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def model_detail(request, pk):
    """The model page. POST ``action=rename`` (``name``) renames it; ``action=colours``
    (``colour_<value>`` = ``#rrggbb`` per class) sets its label colours, ``action=colours-reset``
    goes back to the default palette."""
    model = selectors.model_get(user=request.user, pk=pk)
    if request.method == "POST":
        require_write(request.user, model.project)  # viewers: 403, whatever they sent
        action = request.POST.get("action", "")
        try:
            if action == "rename":
                services.model_rename(model=model, actor=request.user, name=request.POST.get("name", ""))
                messages.success(request, f"The model is now called “{model.name}”.")
            elif action == "colours":
                colours = {key[len("colour_"):]: value for key, value in request.POST.items() if key.startswith("colour_")}
                services.model_set_colours(model=model, actor=request.user, colours=colours)
                messages.success(request, "The label colours were saved; the viewer and legends use them.")
            elif action == "colours-reset":
                services.model_set_colours(model=model, actor=request.user, colours={})
                messages.success(request, "The label colours are back to the default (colour-blind-safe) palette.")
            else:
                messages.error(request, "Nothing to change: unknown action.")
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        return redirect("mlmodels:detail", pk=model.pk)
    labels = sorted(((int(k), v) for k, v in (model.label_names or {}).items()))
    dice = [(value, name, (model.val_dice or {}).get(name)) for value, name in labels if value != 0]
    return render(request, "mlmodels/detail.html", {
        "model": model, "project": model.project, "dice": dice, "network_file": model.network_file,
        "files": selectors.bundle_files(model), "can_write": role_of(request.user, model.project) in WRITE_ROLES,
        "figures": services.model_figures(model), "legend": legend(model.label_names, model.label_colours),
        "method_title": services.method_title(model.method), "run": model.run,
        "val_cases": _validation_case_count(model),
    })


def _validation_case_count(model) -> int | None:
    """How many cases the validation Dice is over, from webapp.evaluations (written in parallel:
    None while it does not offer it)."""
    import importlib.util

    if importlib.util.find_spec("webapp.evaluations.selectors") is None:
        return None
    from webapp.evaluations import selectors as evaluations

    reader = getattr(evaluations, "validation_case_count", None)
    return reader(model) if reader is not None else None


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
