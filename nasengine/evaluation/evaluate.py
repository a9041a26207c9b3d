"""Evaluate a model on held-out cases in each input's own geometry; JSON report and CSV.

Each case goes through the prediction users get (``nasengine.inference.predict.segment``, the
function ``predict_volume`` writes out): preprocessing, sliding window, the prediction put back
on the input's grid, the model's post-processing. It is compared with the original label file
on that grid, with distances in mm from the input's affine (``cases.spacing_of``). Nothing is
resampled for scoring.
"""
from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasengine.data.errors import DataError
from nasengine.evaluation.cases import (
    EvalCase,
    cases_from_entries,
    data_dir_of,
    held_out_cases,
    read_label,
    spacing_of,
)
from nasengine.evaluation.metrics import DEFAULT_NSD_TOLERANCE_MM, METRICS, case_metrics, summarise

REPORT_FORMAT = "voxelsearch-evaluation"
PathLike = str | os.PathLike[str]


def _say(progress: Any) -> Callable[[str], None]:
    return progress if callable(progress) else (lambda _msg: None)


def score_case(models: Any, case: EvalCase, labels: dict[int, str], *, overlap: float,
               mirror: bool, postprocess: str, tolerance_mm: float, sw_batch_size: int,
               device: torch.device | str | None, progress: Any = None) -> dict[str, Any]:
    """One case row: predict ``case.image`` like ``predict`` does, score against ``case.label``."""
    from nasengine.inference.predict import segment

    truth, affine = read_label(case.label)
    pred, info = segment(models, case.image, sw_batch_size=sw_batch_size, overlap=overlap,
                         mirror=mirror, postprocess=postprocess, device=device,
                         progress=progress)
    pred = pred.astype(np.uint8)  # exactly what predict_volume writes
    if pred.shape != truth.shape:
        raise DataError(case.label, f"the label has shape {truth.shape} but its image "
                                    f"{pred.shape}")
    spacing = spacing_of(affine)
    return {"id": case.case_id, "image": case.image.name, "label": case.label.name,
            "shape": list(truth.shape), "spacing_mm": [round(s, 6) for s in spacing],
            "lcc_classes": info["lcc_classes"],
            "classes": case_metrics(pred, truth, labels, spacing, tolerance_mm=tolerance_mm)}


def evaluate(model_dir: Any, data_dir: PathLike | None = None,
             cases: Sequence[Any] | None = None, *, overlap: float = 0.5, mirror: bool = False,
             postprocess: str = "auto", tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
             sw_batch_size: int = 4, device: torch.device | str | None = None,
             progress: Any = None, split: str = "test") -> dict[str, Any]:
    """Score a model (bundle, ensemble folder or list, as ``predict`` takes) on labelled cases.

    ``cases``: None for the model's held-out test cases (``cases.held_out_cases``), else
    ``EvalCase`` objects or ``{"id", "image", "label"}`` entries relative to ``data_dir``
    (default: the dataset the model was trained on). Returns a JSON-able report::

        {"format", "version", "split", "created", "settings" {overlap, mirror, postprocess,
         nsd_tolerance_mm}, "labels" {value: name}, "classes" [names], "metrics" [...],
         "cases" [{"id", "image", "label", "shape", "spacing_mm", "lcc_classes",
                   "classes" {name: {dice, hd95_mm, nsd, volume_*, present, missed, spurious}}}],
         "summary" {name: {metric: {n, mean, sd, median, min, max}, n_cases, missed, spurious}},
         "mean_dice"}
    """
    from nasengine.inference.ensemble import resolve_models

    say = _say(progress)
    bundles, _ = resolve_models(model_dir)
    first = bundles[0]
    root = data_dir_of(first, data_dir)
    if cases is None:
        chosen = held_out_cases(first, root)
    else:
        chosen = [c for c in cases if isinstance(c, EvalCase)]
        chosen += cases_from_entries(root, [c for c in cases if not isinstance(c, EvalCase)])
    if not chosen:
        raise DataError(root, "no cases to evaluate on")
    labels = first.labels
    names = [name for value, name in sorted(labels.items()) if value != 0]
    started = time.monotonic()
    rows = []
    for i, case in enumerate(chosen, 1):
        say(f"evaluating case {i} of {len(chosen)} ({case.case_id})")
        rows.append(score_case(model_dir, case, labels, overlap=overlap, mirror=mirror,
                               postprocess=postprocess, tolerance_mm=tolerance_mm,
                               sw_batch_size=sw_batch_size, device=device,
                               progress=progress if callable(progress) else None))
    summary = summarise(rows, names)
    means = [summary[n]["dice"]["mean"] for n in names if summary[n]["dice"]["mean"] is not None]
    return {
        "format": REPORT_FORMAT, "version": 1, "split": split,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - started, 3),
        "settings": {"overlap": float(overlap), "mirror": bool(mirror), "postprocess": postprocess,
                     "nsd_tolerance_mm": float(tolerance_mm),
                     "geometry": "each input's own grid (prediction restored, label as stored)"},
        "models": [str(b.path) for b in bundles],
        "labels": {str(k): v for k, v in sorted(labels.items())},
        "classes": names, "metrics": list(METRICS),
        "cases": rows, "summary": summary,
        # mean over classes of the per-class mean Dice (classes with no case left out)
        "mean_dice": float(np.mean(means)) if means else None,
    }


CSV_COLUMNS = ("case", "class", "dice", "hd95_mm", "nsd", "volume_true_ml", "volume_pred_ml",
               "volume_error_ml", "volume_error_pct", "present", "missed", "spurious")


def report_csv(report: dict[str, Any]) -> str:
    """The case table as CSV text: one row per case and class (empty cells: undefined)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    tolerance = (report.get("settings") or {}).get("nsd_tolerance_mm")
    # the NSD column names its tolerance, so the file stands on its own
    writer.writerow([f"nsd_at_{tolerance:g}mm" if c == "nsd" and tolerance is not None else c
                     for c in CSV_COLUMNS])
    for case in report.get("cases", []):
        for name in report.get("classes", []):
            row = (case.get("classes") or {}).get(name)
            if row is None:
                continue
            cells = [case.get("id"), name]
            for column in CSV_COLUMNS[2:]:
                value = row.get(column)
                if isinstance(value, bool):
                    cells.append("yes" if value else "no")
                elif value is None:
                    cells.append("")
                elif isinstance(value, float):
                    cells.append(f"{value:.6g}")
                else:
                    cells.append(value)
            writer.writerow(cells)
    return buffer.getvalue()


def write_report_csv(report: dict[str, Any], path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_csv(report), encoding="utf-8")
    return out
