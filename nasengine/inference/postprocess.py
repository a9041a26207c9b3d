"""Largest-connected-component post-processing per class, and deciding it as nnU-Net does.

A model's decision lives in ``postprocessing.json`` next to its ``bundle.json``::

    {"format": "voxelsearch-postprocessing", "version": 1,
     "lcc_classes": [1, 3],                # label values whose largest component is kept
     "decided_on": {"cases": ["case_003", ...], "source": "validation"},
     "per_class": {"1": {"name": "organ", "dice_before": 0.81, "dice_after": 0.84,
                         "n_cases": 2, "keep": true}, ...}}

Only this module reads and writes it. Pure functions over label maps: the prediction that
feeds ``decide_lcc`` is made by ``nasengine.inference.decide``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

POSTPROCESSING_FILE = "postprocessing.json"
POSTPROCESSING_FORMAT = "voxelsearch-postprocessing"

#: Values of ``postprocess`` that predict accepts: the model's stored decision, nothing, or the
#: largest component of every foreground class.
POSTPROCESS_CHOICES = ("auto", "none", "lcc")


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean mask (empty stays empty).

    26-connectivity (full 3x3x3 neighbourhood) as nnU-Net's ``remove_all_but_largest_component``
    uses, so a structure touching itself only at a corner stays one object.
    """
    from scipy.ndimage import label as cc_label

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    components, n = cc_label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(sizes.argmax())


def keep_largest_components(label: np.ndarray, classes: Iterable[int]) -> np.ndarray:
    """A copy of ``label`` where, for each label value in ``classes``, voxels outside that
    class's largest component become background (0)."""
    out = np.array(label, copy=True)
    for value in classes:
        mask = out == int(value)
        if not mask.any():
            continue
        out[mask & ~largest_component(mask)] = 0
    return out


def _dice(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Dice of two boolean masks; None when both are empty (the class is absent)."""
    total = int(pred.sum()) + int(truth.sum())
    if total == 0:
        return None
    return 2.0 * int(np.logical_and(pred, truth).sum()) / total


def decide_lcc(pairs: Sequence[tuple[np.ndarray, np.ndarray]], labels: Mapping[int, str]
               ) -> dict[str, Any]:
    """Decide, per foreground class, whether keeping only its largest component helps.

    ``pairs``: (prediction, ground truth) label maps of the validation cases, on the same grid.
    For each class the mean Dice over the cases where the class is in the prediction or the
    truth is computed with and without the class's LCC; the LCC is kept only when it raises
    that mean strictly (nnU-Net keeps a post-processing step only if it improves validation
    Dice; a tie keeps the raw prediction, the simpler choice). Classes are decided
    independently (nnU-Net also tries all foreground merged into one region first; with a
    handful of validation cases that extra choice mostly fits noise, so it is left out).

    Returns ``{"lcc_classes": [...], "per_class": {value: {...}}}``.
    """
    per_class: dict[str, Any] = {}
    keep: list[int] = []
    for value, name in sorted(labels.items()):
        if int(value) == 0:
            continue
        before, after = [], []
        for pred, truth in pairs:
            p, t = pred == value, truth == value
            d0 = _dice(p, t)
            if d0 is None:
                continue
            before.append(d0)
            after.append(_dice(largest_component(p), t) or 0.0)
        mean_before = float(np.mean(before)) if before else None
        mean_after = float(np.mean(after)) if after else None
        improves = mean_before is not None and mean_after is not None and mean_after > mean_before
        if improves:
            keep.append(int(value))
        per_class[str(int(value))] = {"name": name, "dice_before": mean_before,
                                      "dice_after": mean_after, "n_cases": len(before),
                                      "keep": bool(improves)}
    return {"lcc_classes": keep, "per_class": per_class}


def write_postprocessing(bundle_dir: str | os.PathLike[str], decision: Mapping[str, Any], *,
                         cases: Sequence[str], source: str = "validation") -> Path:
    """Store a decision (from ``decide_lcc``) as ``postprocessing.json`` in ``bundle_dir``."""
    path = Path(bundle_dir) / POSTPROCESSING_FILE
    doc = {"format": POSTPROCESSING_FORMAT, "version": 1,
           "lcc_classes": [int(v) for v in decision.get("lcc_classes", [])],
           "decided_on": {"cases": list(cases), "source": source},
           "per_class": dict(decision.get("per_class", {}))}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_postprocessing(bundle_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stored decision of a model, or None when none was made (or the file is unreadable:
    then no post-processing is applied, which is the prediction without it)."""
    path = Path(bundle_dir) / POSTPROCESSING_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != POSTPROCESSING_FORMAT:
        return None
    return doc


def lcc_classes_for(postprocess: str, bundle_dirs: Sequence[str | os.PathLike[str]],
                    labels: Mapping[int, str]) -> list[int]:
    """Which classes get their LCC for a ``postprocess`` choice (see ``POSTPROCESS_CHOICES``).

    ``auto``: the stored decision of the model (of the first directory: an ensemble directory
    holds its own); none when no decision was stored.
    """
    if postprocess not in POSTPROCESS_CHOICES:
        raise ValueError(f"postprocess must be one of {', '.join(POSTPROCESS_CHOICES)}, "
                         f"not {postprocess!r}")
    if postprocess == "none":
        return []
    if postprocess == "lcc":
        return sorted(int(v) for v in labels if int(v) != 0)
    doc = read_postprocessing(bundle_dirs[0]) if bundle_dirs else None
    if doc is None:
        return []
    return [int(v) for v in doc.get("lcc_classes", []) if int(v) in labels and int(v) != 0]
