"""C2FNAS networks as version-2 genotypes (kind ``ushape``, ops on nodes, typed inputs).

Nodes: ``in`` (level 0), ``stem`` (level 1, ``base_channels``), ``c0 .. c{n-1}`` (cell ``i`` at
level ``code[i] + 1`` with ``base_channels * 2 ** code[i]`` channels; its node ``op`` is the cell
op), ``head`` (level 0, ``base_channels // 2``) and ``out`` (the class logits).

Edges into a cell (summed): the previous cell through ``conv_1x1x1`` (same level),
``c2fnas_down`` (3x3x3 stride 2, channels doubled) or ``up`` (trilinear x2 + 1x1x1, channels
halved), role ``previous``; the second input through ``conv_1x1x1``, role
``previous_previous`` or ``skip``. The end module is the shared ``head_up`` (3x3x3 conv,
trilinear x2) and ``head_out`` (3x3x3 conv, 1x1x1 classifier).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasengine.genotype import FORMAT, VERSION, canonical_hash

from .ops import CELL_OP_NAMES, DOWN_OP, STEM_OP
from .space import STEM, cell_inputs, check_code

__all__ = ["topology_genotype", "candidate_id", "node_id", "COARSE_OP"]

#: Every coarse-stage cell is a standard 3x3x3 conv (sec. 3.3, c_0).
COARSE_OP = "c2fnas_3d"


def node_id(index: int) -> str:
    return "stem" if index == STEM else f"c{index}"


def topology_genotype(code: Sequence[int], ops: Sequence[str] | None = None, *,
                      in_channels: int, out_channels: int, base_channels: int,
                      meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The genotype of topology ``code`` with cell ``ops`` (default: all 3x3x3, the coarse
    stage's colouring). ``meta`` carries ``topology_code``, ``cell_ops`` and anything given."""
    code = check_code(code)
    ops = list(ops) if ops is not None else [COARSE_OP] * len(code)
    if len(ops) != len(code):
        raise ValueError(f"{len(ops)} ops for {len(code)} cells")
    unknown = [o for o in ops if o not in CELL_OP_NAMES]
    if unknown:
        raise ValueError(f"unknown C2FNAS cell op(s) {unknown}; known: {', '.join(CELL_OP_NAMES)}")
    if base_channels < 2 or base_channels % 2:
        raise ValueError(f"base_channels must be even and >= 2, got {base_channels}")
    channels = {STEM: base_channels, **{i: base_channels * 2 ** c for i, c in enumerate(code)}}
    nodes: list[dict[str, Any]] = [
        {"id": "in", "kind": "input", "channels": in_channels, "level": 0},
        {"id": "stem", "kind": "feature", "channels": base_channels, "level": 1, "position": 0},
    ]
    edges: list[dict[str, Any]] = [
        {"source": "in", "target": "stem", "op": STEM_OP, "resample": "down", "role": "input"}]
    for i, (level, inputs, op) in enumerate(zip(code, cell_inputs(code), ops)):
        nodes.append({"id": node_id(i), "kind": "feature", "channels": channels[i],
                      "level": level + 1, "position": i + 1, "op": {"name": op}})
        prev_op = {"same": "conv_1x1x1", "down": DOWN_OP, "up": "up"}[inputs.kind]
        resample = {"same": "none", "down": "down", "up": "up"}[inputs.kind]
        edges.append({"source": node_id(inputs.previous), "target": node_id(i), "op": prev_op,
                      "resample": resample, "role": "previous", "slot": 0})
        if inputs.second is not None:
            edges.append({"source": node_id(inputs.second), "target": node_id(i),
                          "op": "conv_1x1x1", "resample": "none", "role": inputs.role,
                          "slot": 1})
    last = node_id(len(code) - 1)
    nodes.append({"id": "head", "kind": "feature", "channels": base_channels // 2, "level": 0,
                  "position": len(code) + 1})
    nodes.append({"id": "out", "kind": "output", "channels": out_channels, "level": 0,
                  "position": len(code) + 2})
    edges.append({"source": last, "target": "head", "op": "head_up", "resample": "up"})
    edges.append({"source": "head", "target": "out", "op": "head_out", "resample": "none"})
    return {
        "format": FORMAT, "version": VERSION, "method": "c2fnas", "kind": "ushape",
        "in_channels": int(in_channels), "out_channels": int(out_channels),
        "nodes": nodes, "edges": edges, "cells": [], "continuous": False,
        "meta": {"topology_code": list(code), "cell_ops": list(ops),
                 "divisor": 2 ** (max(code) + 1), **(meta or {})},
    }


def candidate_id(genotype: dict[str, Any]) -> str:
    """The stable id of a candidate: the canonical hash of its architecture."""
    return canonical_hash(genotype)
