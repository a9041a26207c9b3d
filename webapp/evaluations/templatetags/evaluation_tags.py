"""``{% model_evaluation model %}``: the model page's test-split section (evaluation, box plot,
controls), computed here so the model page's view needs no change."""
from django import template

from webapp.projects.access import role_of
from webapp.projects.models import WRITE_ROLES

from .. import selectors
from ..models import Evaluation

register = template.Library()


@register.inclusion_tag("evaluations/_section.html", takes_context=True)
def model_evaluation(context, model):
    request = context.get("request")
    user = getattr(request, "user", None)
    can_write = bool(user is not None and role_of(user, model.project) in WRITE_ROLES)
    evaluation = selectors.evaluation_of(model)
    report = (evaluation.report or {}) if evaluation is not None else {}
    names = report.get("classes") or []
    cases = []
    for case in report.get("cases", []):
        cases.append({"id": case.get("id"), "shape": "\u00d7".join(str(v) for v in case.get("shape", [])),
                      "spacing": " \u00d7 ".join(f"{v:g}" for v in case.get("spacing_mm", [])),
                      "classes": [case.get("classes", {}).get(n, {}) for n in names]})
    summary = [(n, (report.get("summary") or {}).get(n, {})) for n in names]
    control_set = selectors.control_set_of(model)
    from ..services import is_control_run

    is_control = is_control_run(model.run)
    return {
        "model": model, "evaluation": evaluation, "report": report, "class_names": names,
        "cases": cases, "summary": summary, "can_write": can_write,
        "succeeded": evaluation is not None and evaluation.status == Evaluation.Status.SUCCEEDED,
        "box": selectors.dice_box_plot(report) if report else None,
        "settings": report.get("settings") or {}, "figures": report.get("model_figures") or {},
        "val_cases": selectors.validation_case_count(model),
        "control_set": control_set, "is_control": is_control,
        "controls": selectors.controls_comparison(control_set, names) if control_set else None,
        "can_launch_controls": can_write and control_set is None and not is_control
        and model.run.kind == "retrain" and model.run.status == "succeeded" and model.dataset_id is not None,
        "csrf_token": context.get("csrf_token"),
        **_folds_context(model, names, can_write, is_control, report),
    }


def _folds_context(model, names, can_write, is_control, model_report=None) -> dict:
    from webapp.runs.models import Run

    from ..models import FoldSet
    from ..services import DEFAULT_FOLDS, fold_set_failures

    fold_set = FoldSet.objects.filter(model=model).first()
    if fold_set is None:
        return {"fold_set": None, "default_folds": DEFAULT_FOLDS,
                "can_launch_folds": can_write and not is_control and model.run.kind == "retrain"
                and model.run.status == "succeeded" and bool(model.run.genotype) and model.dataset_id is not None}
    runs = {r.pk: r for r in Run.objects.filter(pk__in=fold_set.run_ids)}
    report = fold_set.report or {}
    return {"fold_set": fold_set, "can_launch_folds": False,
            "fold_runs": [(k + 1, runs.get(run_id)) for k, run_id in enumerate(fold_set.run_ids)],
            "fold_problems": fold_set_failures(fold_set) if fold_set.status == "training" else [],
            "ensemble_summary": [(n, (report.get("summary") or {}).get(n, {})) for n in names],
            "ensemble_cases": len(report.get("cases") or []),
            # the folds may hold out other test cases than this model did (a test fraction
            # drawn by the fold runs): compare the two only on the same cases
            "ensemble_same_cases": sorted(c.get("id") for c in report.get("cases") or [])
            == sorted(c.get("id") for c in (model_report or {}).get("cases") or [])}


@register.filter
def fmt(value, digits=3):
    """A number with ``digits`` decimals, or an em dash for None."""
    if value is None or value == "":
        return "\u2014"
    try:
        return f"{float(value):.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def si(value):
    """A count in k/M/G (parameters, FLOPs), an em dash for None."""
    if value is None:
        return "\u2014"
    value = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


@register.filter
def duration(seconds):
    if seconds is None:
        return "\u2014"
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"
