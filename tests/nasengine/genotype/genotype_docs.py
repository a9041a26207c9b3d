"""Genotype documents shared by the genotype tests: a small hand-written network and the fixtures."""

import copy
import json
from pathlib import Path

FIXTURES = Path(__file__).parents[2] / "fixtures" / "genotypes"
#: The four example architectures of docs/PLUGIN-SURFACE.md section 2 (plus the gated graph).
FIXTURE_NAMES = ("lattice", "cells", "ushape", "gated")


def fixture(name: str) -> dict:
    """A fresh copy of ``tests/fixtures/genotypes/<name>.json`` as plain data (not validated)."""
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def small_doc() -> dict:
    """in -> stem -> n0_1 -> {conv, down+p3d} -> {n1_1, n1_2} -> n2_1 -> head -> out."""
    return {
        "format": "voxelsearch-genotype",
        "version": 2,
        "method": "test",
        "in_channels": 2,
        "out_channels": 3,
        "nodes": [
            {"id": "in", "kind": "input", "layer": -1, "level": 0, "channels": 2},
            {"id": "n0_1", "kind": "feature", "layer": 0, "level": 1, "channels": 8},
            {"id": "n1_1", "kind": "feature", "layer": 1, "level": 1, "channels": 8},
            {"id": "n1_2", "kind": "feature", "layer": 1, "level": 2, "channels": 16},
            {"id": "n2_1", "kind": "feature", "layer": 2, "level": 1, "channels": 8},
            {"id": "z", "kind": "feature", "layer": 3, "level": 0, "channels": 4},
            {"id": "out", "kind": "output", "layer": 4, "level": 0, "channels": 3},
        ],
        "edges": [
            {"source": "in", "target": "n0_1", "op": "stem", "resample": "down", "params": {"factor": 2}},
            {"source": "n0_1", "target": "n1_1", "op": "conv_3x3x3", "weight": 0.9},
            {"source": "n0_1", "target": "n1_2", "op": "p3d_3x3x1", "resample": "down", "weight": 0.7,
             "op_weights": {"skip": 0.1, "p3d_3x3x1": 0.9}},
            {"source": "n1_1", "target": "n2_1", "op": "skip"},
            {"source": "n1_2", "target": "n2_1", "op": "conv_3x3x3", "resample": "up"},
            {"source": "n2_1", "target": "z", "op": "head_up", "resample": "up"},
            {"source": "z", "target": "out", "op": "head_out"},
        ],
        "cells": [],
        "meta": {"note": "hand written"},
        "continuous": False,
    }


