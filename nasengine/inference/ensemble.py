"""Fold ensembles: several model bundles of one task whose softmax outputs are averaged.

An ensemble directory holds ``ensemble.json`` (and, once decided, its own
``postprocessing.json``)::

    {"format": "voxelsearch-ensemble", "version": 1,
     "members": ["../fold_0", "../fold_1", ...],   # bundle folders, relative to this folder
     "labels": {"0": "background", ...}, "in_channels": 1, "folds": [0, 1, ...],
     "created": "..."}

``resolve_models`` turns whatever ``predict`` was given (one bundle, an ensemble directory, or
a list of bundles) into the member bundles, checked to segment the same classes from the same
channels.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasengine.inference.bundle import BundleError, ModelBundle, read_bundle

ENSEMBLE_FILE = "ensemble.json"
ENSEMBLE_FORMAT = "voxelsearch-ensemble"

PathLike = str | os.PathLike[str]


def is_ensemble_dir(path: PathLike) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def _check_compatible(bundles: Sequence[ModelBundle]) -> None:
    first = bundles[0]
    for other in bundles[1:]:
        if other.labels != first.labels:
            raise BundleError(f"{other.path.name}: segments other classes than {first.path.name} "
                              f"({sorted(other.labels.values())} vs {sorted(first.labels.values())}); "
                              "an ensemble needs models of one task")
        if other.info.get("in_channels") != first.info.get("in_channels"):
            raise BundleError(f"{other.path.name}: takes {other.info.get('in_channels')} channel(s), "
                              f"{first.path.name} takes {first.info.get('in_channels')}")


def read_ensemble(path: PathLike) -> tuple[dict[str, Any], list[ModelBundle]]:
    """The ensemble document and its member bundles (read and checked)."""
    root = Path(path)
    try:
        doc = json.loads((root / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{root}: not an ensemble ({ENSEMBLE_FILE} is missing)") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{ENSEMBLE_FILE}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != ENSEMBLE_FORMAT:
        raise BundleError(f"{ENSEMBLE_FILE}: not a VoxelSearch ensemble")
    members = doc.get("members")
    if not isinstance(members, list) or not members:
        raise BundleError(f"{ENSEMBLE_FILE}: 'members' must list at least one model folder")
    bundles = [read_bundle((root / str(m)).resolve()) for m in members]
    _check_compatible(bundles)
    return doc, bundles


def write_ensemble(out_dir: PathLike, member_dirs: Sequence[PathLike], *,
                   folds: Sequence[int] | None = None) -> Path:
    """Write ``ensemble.json`` into ``out_dir`` (created) naming ``member_dirs`` (stored relative
    to ``out_dir``, so the folders can move together). Checks the members first."""
    out = Path(out_dir)
    bundles = [read_bundle(m) for m in member_dirs]
    if not bundles:
        raise BundleError("an ensemble needs at least one model")
    _check_compatible(bundles)
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": ENSEMBLE_FORMAT, "version": 1,
        "members": [os.path.relpath(Path(m).resolve(), out.resolve()) for m in member_dirs],
        "labels": {str(k): v for k, v in sorted(bundles[0].labels.items())},
        "in_channels": bundles[0].info.get("in_channels"),
        "folds": list(folds) if folds is not None else list(range(len(bundles))),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = out / (ENSEMBLE_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / ENSEMBLE_FILE)
    return out


def resolve_models(models: PathLike | ModelBundle | Sequence[PathLike | ModelBundle]
                   ) -> tuple[list[ModelBundle], Path]:
    """(member bundles, the folder whose ``postprocessing.json`` applies).

    One bundle folder: itself. An ensemble folder: its members, and itself for the
    post-processing decision. A list: every item (each a bundle or an ensemble folder); the
    first item's folder holds the decision.
    """
    items = list(models) if isinstance(models, (list, tuple)) else [models]
    if not items:
        raise BundleError("give at least one model folder")
    bundles: list[ModelBundle] = []
    for item in items:
        if isinstance(item, ModelBundle):
            bundles.append(item)
        elif is_ensemble_dir(item):
            bundles.extend(read_ensemble(item)[1])
        else:
            bundles.append(read_bundle(item))
    _check_compatible(bundles)
    first = items[0]
    decision_dir = first.path if isinstance(first, ModelBundle) else Path(first)
    return bundles, decision_dir
