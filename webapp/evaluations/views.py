"""Evaluation pages: the test-split CSV, evaluating again, launching the controls. The model
page's section is rendered by the ``model_evaluation`` template tag."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from webapp.mlmodels.selectors import model_get

from . import selectors, services
from .models import Evaluation


@login_required
def evaluation_csv(request, pk):
    from nasengine.evaluation import report_csv

    model = model_get(user=request.user, pk=pk)
    evaluation = selectors.evaluation_of(model)
    if evaluation is None or evaluation.status != Evaluation.Status.SUCCEEDED:
        raise Http404("The model has no finished test-split evaluation.")
    response = HttpResponse(report_csv(evaluation.report), content_type="text/csv; charset=utf-8")
    name = slugify(model.name) or f"model-{model.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}_test_evaluation.csv"'
    return response


def _back(model):
    from django.urls import reverse

    return redirect(reverse("mlmodels:detail", kwargs={"pk": model.pk}) + "#model-evaluation")


@login_required
@require_POST
def evaluation_retry(request, pk):
    model = model_get(user=request.user, pk=pk)
    try:
        services.evaluation_retry(actor=request.user, model=model)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, "The model is queued for evaluation on its test cases.")
    return _back(model)


@login_required
@require_POST
def controls_launch(request, pk):
    model = model_get(user=request.user, pk=pk)
    try:
        runs = services.launch_controls(model.run, request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"Two control retrainings are queued (runs #{runs[0].pk} and #{runs[1].pk}).")
    return _back(model)


@login_required
@require_POST
def folds_launch(request, pk):
    model = model_get(user=request.user, pk=pk)
    try:
        fold_set = services.launch_folds(model.run, request.user,
                                         num_folds=request.POST.get("num_folds") or services.DEFAULT_FOLDS)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, f"{fold_set.num_folds} fold retrainings are queued; their ensemble is "
                                  "evaluated once all are done.")
    return _back(model)
