"""Format constants, field vocabularies and the error type of the genotype format."""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "FORMAT", "VERSION", "READABLE_VERSIONS", "NODE_KINDS", "RESAMPLE", "COMBINES", "ROLES", "GENOTYPE_KINDS",
    "GenotypeError", "is_int", "is_num", "check_json_value",
]

FORMAT = "voxelsearch-genotype"
#: The version ``dump`` writes.
VERSION = 2
#: Versions ``validate``/``load`` read (version 1 is upgraded in memory).
READABLE_VERSIONS = (1, 2)
NODE_KINDS = ("input", "feature", "output")
#: ``resample`` value -> change of resolution level.
RESAMPLE = {"none": 0, "down": 1, "up": -1}
#: How a node merges its incoming edges.
COMBINES = ("sum", "concat", "weighted_sum", "inputs")
#: Typed inputs of cell methods (C2FNAS, SCNAS): drawing and bookkeeping only.
ROLES = ("previous", "previous_previous", "skip", "input")
#: Drawing hints for the dashboard.
GENOTYPE_KINDS = ("lattice", "cells", "ushape", "graph")


class GenotypeError(ValueError):
    """A genotype document is malformed. ``path`` names the bad field, e.g. ``cells[1].edges[3].op``."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def is_int(v: Any) -> bool:
    """An int that is not a bool (JSON ``true`` must not pass for ``1``)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_json_value(v: Any, path: str) -> None:
    """Raise :class:`GenotypeError` at ``path`` unless ``v`` is plain JSON data (finite numbers)."""
    if v is None or isinstance(v, (str, bool)) or is_num(v):
        return
    if isinstance(v, list):
        for i, x in enumerate(v):
            check_json_value(x, f"{path}[{i}]")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise GenotypeError(path, f"keys must be strings, got {k!r}")
            check_json_value(x, f"{path}.{k}")
        return
    raise GenotypeError(path, f"not a JSON value: {type(v).__name__}")
