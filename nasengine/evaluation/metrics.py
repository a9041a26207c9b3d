"""Segmentation metrics per case and per class, in millimetres of the image's own grid.

Per class (a label value) of one case: Dice, the 95th-percentile Hausdorff distance (mm), the
normalised surface Dice at a tolerance in mm (MONAI's ``compute_dice``,
``compute_hausdorff_distance(percentile=95)`` and ``compute_surface_dice``, all with the
voxel spacing) and the volume error.

Where a metric is undefined (choices the papers leave open, stated here):

- the class is in neither the prediction nor the truth: every metric is ``None`` and
  ``present`` is false; the case does not count in that class's summary;
- the class is in only one of them: Dice 0, surface Dice 0, Hausdorff distance ``None``
  (infinite; JSON has no infinity) with ``missed`` (truth only) or ``spurious`` (prediction
  only) set, so a summary can say how many such cases there were;
- volume error is predicted minus true volume in mL; its percentage is ``None`` when the true
  volume is 0.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

#: Default tolerance of the normalised surface Dice, in mm (stated in every report).
DEFAULT_NSD_TOLERANCE_MM = 1.0

#: The per-class numbers a case row carries, in report order.
METRICS = ("dice", "hd95_mm", "nsd", "volume_true_ml", "volume_pred_ml", "volume_error_ml",
           "volume_error_pct")


def _tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def class_metrics(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float], *,
                  tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM) -> dict[str, Any]:
    """Metrics of one class from two boolean masks [X,Y,Z] on one grid with ``spacing`` (mm)."""
    from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match the label's {truth.shape}")
    spacing = [float(s) for s in spacing]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n_pred, n_true = int(pred.sum()), int(truth.sum())
    row: dict[str, Any] = {
        "present": bool(n_pred or n_true), "missed": bool(n_true and not n_pred),
        "spurious": bool(n_pred and not n_true),
        "volume_true_ml": n_true * voxel_ml, "volume_pred_ml": n_pred * voxel_ml,
        "volume_error_ml": (n_pred - n_true) * voxel_ml,
        "volume_error_pct": 100.0 * (n_pred - n_true) / n_true if n_true else None,
        "dice": None, "hd95_mm": None, "nsd": None,
    }
    if not row["present"]:
        return row
    if not (n_pred and n_true):
        row["dice"], row["nsd"] = 0.0, 0.0
        return row
    p, t = _tensor(pred), _tensor(truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's deprecation notes on get_mask_edges
        row["dice"] = _finite(float(compute_dice(p, t, include_background=True)[0, 0]))
        row["hd95_mm"] = _finite(float(compute_hausdorff_distance(
            p, t, include_background=True, percentile=95, spacing=spacing)[0, 0]))
        row["nsd"] = _finite(float(compute_surface_dice(
            p, t, class_thresholds=[float(tolerance_mm)], include_background=True,
            spacing=spacing)[0, 0]))
    return row


def case_metrics(pred_label: np.ndarray, true_label: np.ndarray, labels: Mapping[int, str],
                 spacing: Sequence[float], *, tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM
                 ) -> dict[str, dict[str, Any]]:
    """``{class name: class_metrics(...)}`` over the foreground classes of two label maps
    (label values, same grid)."""
    pred_label = np.asarray(pred_label)
    true_label = np.asarray(true_label)
    if pred_label.shape != true_label.shape:
        raise ValueError(f"prediction shape {pred_label.shape} does not match the label's "
                         f"{true_label.shape}")
    out = {}
    for value, name in sorted(labels.items()):
        if int(value) == 0:
            continue
        out[name] = class_metrics(pred_label == int(value), true_label == int(value), spacing,
                                  tolerance_mm=tolerance_mm)
    return out


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "sd": None, "median": None, "min": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    # sample standard deviation (ddof=1), None for a single case: one case has no spread
    return {"n": int(arr.size), "mean": float(arr.mean()),
            "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
            "median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max())}


def summarise(case_rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]
              ) -> dict[str, dict[str, Any]]:
    """Per class: ``{metric: {n, mean, sd, median, min, max}, "missed": k, "spurious": k,
    "n_cases": k}`` over the cases where the class is present (see the module notes)."""
    summary: dict[str, dict[str, Any]] = {}
    for name in class_names:
        rows = [r["classes"][name] for r in case_rows if name in r.get("classes", {})]
        present = [r for r in rows if r.get("present")]
        entry: dict[str, Any] = {"n_cases": len(present),
                                 "missed": sum(1 for r in present if r.get("missed")),
                                 "spurious": sum(1 for r in present if r.get("spurious"))}
        for metric in METRICS:
            entry[metric] = _stats([r[metric] for r in present if r.get(metric) is not None])
        summary[name] = entry
    return summary
