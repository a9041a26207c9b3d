"""The genotype JSON Schema, with its op names read from the op registry at call time."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources

from ..ops import op_names

__all__ = ["schema"]


@lru_cache(maxsize=1)
def _template() -> dict:
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))


def schema() -> dict:
    """The JSON Schema of a genotype document (a fresh copy): ``$defs.op_name.enum`` lists the
    ops registered now, so an op a method registers later is in the next call's schema."""
    doc = copy.deepcopy(_template())
    doc["$defs"]["op_name"]["enum"] = list(op_names())
    return doc
