"""Reads for evaluations: a model's test-split summary (the comparison page's leaderboard uses
``summary_for_model``), the model page's section, the box plot's geometry, the controls."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from .models import ControlSet, Evaluation


def evaluation_of(model) -> Evaluation | None:
    return Evaluation.objects.filter(model=model).first()


def summary_for_model(model) -> dict | None:
    """The test-split figures of a model, or None until an evaluation succeeded::

        {"n_cases", "mean_dice", "nsd_tolerance_mm", "parameters", "flops",
         "classes": {name: {"dice_mean", "dice_sd", "dice_median", "hd95_mm_mean",
                            "nsd_mean", "volume_error_pct_mean", "n_cases"}}}
    """
    evaluation = evaluation_of(model)
    if evaluation is None or evaluation.status != Evaluation.Status.SUCCEEDED:
        return None
    report = evaluation.report or {}
    figures = report.get("model_figures") or {}
    classes = {}
    for name in report.get("classes", []):
        row = (report.get("summary") or {}).get(name) or {}
        classes[name] = {
            "dice_mean": row.get("dice", {}).get("mean"), "dice_sd": row.get("dice", {}).get("sd"),
            "dice_median": row.get("dice", {}).get("median"),
            "hd95_mm_mean": row.get("hd95_mm", {}).get("mean"), "nsd_mean": row.get("nsd", {}).get("mean"),
            "volume_error_pct_mean": row.get("volume_error_pct", {}).get("mean"),
            "n_cases": row.get("n_cases", 0),
        }
    return {"n_cases": evaluation.n_cases, "mean_dice": evaluation.mean_dice,
            "nsd_tolerance_mm": (report.get("settings") or {}).get("nsd_tolerance_mm"),
            "parameters": figures.get("parameters"), "flops": figures.get("flops"), "classes": classes}


def validation_case_count(model) -> int | None:
    """How many cases the model's validation Dice is over (the bundle's ``source.val_cases``),
    None when the bundle does not say."""
    try:
        info = json.loads((model.bundle_path / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cases = (info.get("source") or {}).get("val_cases")
    return len(cases) if isinstance(cases, list) else None


# --------------------------------------------------------------------------- box plot

BOX_WIDTH, BOX_ROW, BOX_LEFT, BOX_RIGHT, BOX_TOP = 560, 44, 120, 20, 26


def dice_box_plot(report: dict) -> dict | None:
    """Geometry of an inline SVG box plot of the per-case test Dice of each class (x: Dice 0..1;
    box: quartiles, line: median, whiskers: min and max, dots: the cases). None without data."""
    names = report.get("classes") or []
    if not names:
        return None
    span = BOX_WIDTH - BOX_LEFT - BOX_RIGHT

    def x(v: float) -> float:
        return round(BOX_LEFT + span * min(max(v, 0.0), 1.0), 1)

    rows = []
    for i, name in enumerate(names):
        values = [c["classes"][name]["dice"] for c in report.get("cases", [])
                  if c.get("classes", {}).get(name, {}).get("dice") is not None]
        y = BOX_TOP + i * BOX_ROW + BOX_ROW / 2
        row: dict[str, Any] = {"name": name, "y": y, "label_y": y + 4, "n": len(values), "dots": []}
        if values:
            q1, med, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
            row.update(x_min=x(min(values)), x_max=x(max(values)), x_q1=x(q1), x_q3=x(q3),
                       x_med=x(med), box_w=round(x(q3) - x(q1), 1), top=y - 11, bottom=y + 11,
                       box_top=y - 9, median=med,
                       dots=[{"x": x(v), "value": v} for v in values])
        rows.append(row)
    height = BOX_TOP + len(names) * BOX_ROW + 24
    ticks = [{"x": x(t / 5), "label": f"{t / 5:.1f}"} for t in range(6)]
    return {"width": BOX_WIDTH, "height": height, "rows": rows, "ticks": ticks,
            "axis_y": height - 20, "tick_label_y": height - 6, "left": BOX_LEFT,
            "right": BOX_WIDTH - BOX_RIGHT, "top": BOX_TOP - 6}


# --------------------------------------------------------------------------- controls

def control_set_of(model) -> ControlSet | None:
    return ControlSet.objects.select_related("source_run", "random_run", "handdesigned_run").filter(model=model).first()


def _run_model(run):
    from webapp.mlmodels.models import TrainedModel

    return TrainedModel.objects.filter(run=run).first() if run is not None else None


def controls_comparison(control_set: ControlSet, class_names: list[str]) -> list[dict]:
    """The searched model and its two controls, side by side: per-class test Dice (mean and
    sd), mean test Dice, parameters, FLOPs per patch, training time."""
    rows = []
    for role, run in (("searched architecture", control_set.source_run),
                      ("(a) random architecture, same space", control_set.random_run),
                      ("(b) hand-designed network", control_set.handdesigned_run)):
        model = control_set.model if run is not None and run == control_set.source_run else _run_model(run)
        summary = summary_for_model(model) if model is not None else None
        evaluation = evaluation_of(model) if model is not None else None
        rows.append({
            "role": role, "run": run, "model": model, "summary": summary,
            "status": (run.get_status_display() if run is not None else "deleted"),
            "evaluation_status": evaluation.get_status_display() if evaluation is not None else None,
            "dice": [((summary or {}).get("classes", {}).get(n) or {}) for n in class_names],
            "training_seconds": run.duration_seconds if run is not None and run.status == run.Status.SUCCEEDED else None,
        })
    return rows
