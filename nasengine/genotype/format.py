"""The versioned JSON architecture format: load and dump (validation lives in :mod:`.validate`).

A genotype is plain JSON data (see ``schema()`` and docs/PLUGIN-SURFACE.md section 2)::

    {"format": "voxelsearch-genotype", "version": 2, "method": "dints", "kind": "lattice",
     "in_channels": 1, "out_channels": 3,
     "nodes": [{"id": "in", "kind": "input", "layer": -1, "level": 0, "channels": 1}, ...],
     "edges": [{"source": "in", "target": "n0_1", "op": "stem", "resample": "down",
                "params": {"factor": 2}, "weight": 1.0}, ...],
     "cells": [], "derived": {...}, "meta": {...}, "continuous": false}

``level`` is the resolution level: ``log2`` of the downsampling factor relative to the network
input. An edge either carries a cell op (same resolution) after an optional 2x ``resample``
(``down``/``up``), or a non-cell op (``down``, ``up``, ``stem``, ``head_up``, ``head_out``) that
changes the level by itself; ``resample`` then states the direction of that change. A node
merges its incoming edges by its ``combine`` rule (default: sum), then applies its ``op``; a cell
node applies a cell type to them. Version 1 documents load (upgraded in memory); ``dump`` and
``dumps`` write version 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .core import FORMAT, VERSION, GenotypeError
from .graph import topological_order
from .validate import upgrade, validate

__all__ = ["FORMAT", "VERSION", "GenotypeError", "validate", "upgrade", "load", "dump", "loads", "dumps", "topological_order"]


def dumps(doc: dict) -> str:
    """Validate and serialise compactly (no spaces), as version 2."""
    return json.dumps(validate(doc), separators=(",", ":"), allow_nan=False)


def loads(text: str) -> dict:
    """Parse JSON text (never evaluates code) and validate it (version 1 comes back upgraded)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError("$", f"not valid JSON: {exc}") from None
    return validate(doc)


def dump(doc: dict, path: str | os.PathLike) -> None:
    """Validate and write ``doc`` to ``path`` as version 2, atomically (temp file + rename)."""
    path = Path(path)
    text = json.dumps(validate(doc), indent=1, allow_nan=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    """Read and validate a genotype file."""
    return loads(Path(path).read_text(encoding="utf-8"))
