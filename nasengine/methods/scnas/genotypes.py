"""SCNAS architectures as genotype documents (version 2, kind ``"cells"``;
docs/PLUGIN-SURFACE.md sec. 2).

A document holds the 4 cell types once (``cells``) and the macro U-Net that instantiates them
(``nodes`` / ``edges``):

- cell type: input nodes ``in0`` (previous-previous) and ``in1`` (previous), the live
  intermediate nodes ``n0..n3`` (``combine: "sum"``), and ``out`` (``combine: "concat"`` of the
  live nodes in order, ``channel_rule.output_multiplier`` = their number). Channels inside a
  cell are multiples of the instance's ``C``. In a reduction cell the edges leaving ``in0`` /
  ``in1`` carry the stride-2 ops with ``resample: "down"``. A derived cell type that reads only
  one of its inputs declares only that one (``inputs: 1``, renumbered ``in0``; the macro edge's
  ``role`` still says which it is), and macro nodes that nothing reads are dropped.
- macro: ``in -> stem``; a node per cell instance (``cell``: its type, ``channels``: the
  instance's node channels ``C``; its output has ``output_multiplier x C``), fed by one edge per
  cell input (``slot`` 0 = ``in0``, role ``previous_previous``; ``slot`` 1 = ``in1``, role
  ``previous``) whose op is the input preprocessing (``scnas_pre``, ``scnas_pre_down`` or
  ``scnas_pre_up``); in the decoder a ``sum`` node adds the previous cell and the same-level
  encoder output first (role ``skip``; after pruning their widths may differ, and the skip
  edge then carries a 1x1x1 projection ``scnas_pre`` instead of ``skip``: a choice, the paper's
  cells never lose nodes); ``out`` is the out cell.

``stage`` on a macro node is its resolution level and ``position`` its order, for drawing the U.
Snapshots (``continuous: true``) carry every edge with ``op_weights`` = softmax(alpha)
(keys: the stride-1 op names), ``op`` = the argmax op, ``weight`` = its probability and
``selected`` = kept by the current derivation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .derive import CellDecision, derive_cell, softmax
from .ops import OP_NAMES, PRIMITIVES, ZERO, op_name
from .space import (
    CELL_EDGES,
    CELL_TYPES,
    NUM_NODES,
    feature_levels,
    macro_plan,
    node_channels,
    preprocess_kind,
)

__all__ = ["FORMAT", "VERSION", "discrete_genotype", "continuous_genotype", "cell_type_document",
           "output_multipliers", "decision_meta"]

FORMAT = "voxelsearch-genotype"
VERSION = 2
_PRE_OP = {"same": "scnas_pre", "down": "scnas_pre_down", "up": "scnas_pre_up"}
_RESAMPLE = {"same": "none", "down": "down", "up": "up"}


def _strided(cell_type: str, edge) -> bool:
    return cell_type == "reduction" and edge.from_input


def cell_type_document(cell_type: str, decision: CellDecision | None, alpha: np.ndarray,
                       *, continuous: bool = False, ndigits: int = 4) -> dict[str, Any]:
    """One entry of ``cells``: the discrete cell of ``decision``, or (``continuous``) every
    edge with its op weights and the decision marked ``selected``."""
    prob = softmax(alpha)
    if decision is None:
        decision = derive_cell(alpha)
    live = decision.live if not continuous else (True,) * NUM_NODES
    used = decision.used_inputs if not continuous else (True,) * len(decision.used_inputs)
    rename = {f"in{i}": f"in{k}" for k, i in enumerate(i for i, u in enumerate(used) if u)}
    nodes: list[dict[str, Any]] = [{"id": new, "kind": "input", "channels": 1} for new in rename.values()]
    nodes += [{"id": f"n{j}", "kind": "feature", "channels": 1, "combine": "sum",
               **({"active": bool(decision.live[j])} if continuous else {})}
              for j in range(NUM_NODES) if live[j]]
    out_mult = NUM_NODES if continuous else decision.num_live
    nodes.append({"id": "out", "kind": "output", "channels": out_mult, "combine": "concat"})
    edges: list[dict[str, Any]] = []
    for e in CELL_EDGES:
        kept = decision.ops[e.index]
        shown = int(prob[e.index].argmax()) if continuous else kept
        if not continuous and kept == ZERO:
            continue
        stride = 2 if _strided(cell_type, e) else 1
        edge = {"source": rename.get(e.source_id, e.source_id), "target": e.target_id,
                "op": op_name(PRIMITIVES[shown], stride),
                "resample": "down" if stride == 2 else "none",
                "weight": round(float(prob[e.index, shown]), ndigits),
                "op_weights": {OP_NAMES[p]: round(float(prob[e.index, o]), ndigits) for o, p in enumerate(PRIMITIVES)}}
        if continuous:
            edge["selected"] = bool(kept != ZERO)
        edges.append(edge)
    slot = 0
    for j in range(NUM_NODES):
        if live[j]:
            edges.append({"source": f"n{j}", "target": "out", "op": "skip", "resample": "none", "slot": slot})
            slot += 1
    return {"name": cell_type, "inputs": len(rename), "nodes": nodes, "edges": edges,
            "channel_rule": {"output_multiplier": out_mult}}


def decision_meta(decision: CellDecision) -> dict[str, Any]:
    """What the derivation did to one cell type (kept in the genotype's ``meta.cells``)."""
    return {"fallback": decision.fallback, "used_inputs": list(decision.used_inputs),
            "dead_nodes": [f"n{j}" for j in range(NUM_NODES) if not decision.live[j]]}


def output_multipliers(decisions: Sequence[CellDecision] | None) -> dict[str, int]:
    """Output channels of each cell type in units of its node channels ``C`` (4 in the
    supernet, the live-node count in a derived network)."""
    if decisions is None:
        return {t: NUM_NODES for t in CELL_TYPES}
    return {t: d.num_live for t, d in zip(CELL_TYPES, decisions)}


def _macro(depth: int, in_channels: int, out_channels: int, stem_channels: int,
           multipliers: dict[str, int], used_inputs: dict[str, tuple[bool, ...]] | None = None
           ) -> tuple[list[dict], list[dict]]:
    levels = feature_levels(depth)
    width = {"stem": stem_channels}
    nodes: list[dict[str, Any]] = [
        {"id": "in", "kind": "input", "channels": in_channels, "stage": 0, "position": 0},
        {"id": "stem", "kind": "feature", "channels": stem_channels, "stage": 0, "position": 1},
    ]
    edges: list[dict[str, Any]] = [{"source": "in", "target": "stem", "op": "scnas_stem", "resample": "none"}]
    for i, cell in enumerate(macro_plan(depth)):
        c = node_channels(stem_channels, cell.level)
        used = (used_inputs or {}).get(cell.cell_type, (True, True))
        prev = cell.prev
        if cell.skip is not None and used[1]:  # decoder: previous output + same-level encoder output
            prev = f"{cell.name}_sum"
            nodes.append({"id": prev, "kind": "feature", "channels": width[cell.prev], "combine": "sum",
                          "stage": levels[cell.prev], "position": i + 1.5})
            edges.append({"source": cell.prev, "target": prev, "op": "skip", "resample": "none", "slot": 0,
                          "role": "previous"})
            same = width[cell.skip] == width[cell.prev]
            edges.append({"source": cell.skip, "target": prev, "op": "skip" if same else "scnas_pre",
                          "resample": "none", "slot": 1, "role": "skip"})
            width[prev] = width[cell.prev]
            levels = {**levels, prev: levels[cell.prev]}
        feeds = [f for f, u in zip(((cell.prev_prev, "previous_previous"), (prev, "previous")), used) if u]
        for slot, (source, role) in enumerate(feeds):  # only the inputs the cell type reads
            kind = preprocess_kind(levels[source], cell)
            edges.append({"source": source, "target": cell.name, "op": _PRE_OP[kind],
                          "resample": _RESAMPLE[kind], "slot": slot, "role": role})
        width[cell.name] = multipliers[cell.cell_type] * c
        nodes.append({"id": cell.name, "kind": "feature", "cell": cell.cell_type, "channels": c,
                      "stage": cell.level, "position": i + 2})
    last = macro_plan(depth)[-1].name
    nodes.append({"id": "out", "kind": "output", "channels": out_channels, "stage": 0,
                  "position": len(macro_plan(depth)) + 2})
    edges.append({"source": last, "target": "out", "op": "scnas_out", "resample": "none"})
    return _drop_unread(nodes, edges)


def _drop_unread(nodes: list[dict], edges: list[dict]) -> tuple[list[dict], list[dict]]:
    """Drop feature nodes that nothing reads (a cell type may leave an input unused), with
    their incoming edges, until none is left."""
    while True:
        read = {e["source"] for e in edges}
        unread = {n["id"] for n in nodes if n["kind"] == "feature" and n["id"] not in read}
        if not unread:
            return nodes, edges
        nodes = [n for n in nodes if n["id"] not in unread]
        edges = [e for e in edges if e["target"] not in unread]


def discrete_genotype(alpha: np.ndarray, *, in_channels: int, out_channels: int, stem_channels: int,
                      depth: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The derived architecture of ``alpha [4, 14, 8]`` at ``stem_channels`` (retraining
    width) as a genotype document (figures are added by the caller)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    decisions = [derive_cell(alpha[t]) for t in range(len(CELL_TYPES))]
    nodes, edges = _macro(depth, in_channels, out_channels, stem_channels, output_multipliers(decisions),
                          {t: d.used_inputs for t, d in zip(CELL_TYPES, decisions)})
    cells = [cell_type_document(t, d, alpha[i]) for i, (t, d) in enumerate(zip(CELL_TYPES, decisions))]
    return {"format": FORMAT, "version": VERSION, "method": "scnas", "kind": "cells",
            "in_channels": int(in_channels), "out_channels": int(out_channels),
            "nodes": nodes, "edges": edges, "cells": cells, "continuous": False,
            "meta": {"stem_channels": int(stem_channels), "depth": int(depth), "divisor": 2 ** int(depth),
                     "cells": {t: decision_meta(d) for t, d in zip(CELL_TYPES, decisions)},
                     **(meta or {})}}


def continuous_genotype(alpha: np.ndarray, *, in_channels: int, out_channels: int, stem_channels: int,
                        depth: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The supernet's current state: every edge of every cell type with softmax(alpha)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    nodes, edges = _macro(depth, in_channels, out_channels, stem_channels, output_multipliers(None))
    cells = [cell_type_document(t, None, alpha[i], continuous=True) for i, t in enumerate(CELL_TYPES)]
    return {"format": FORMAT, "version": VERSION, "method": "scnas", "kind": "cells",
            "in_channels": int(in_channels), "out_channels": int(out_channels),
            "nodes": nodes, "edges": edges, "cells": cells, "continuous": True,
            "meta": {"stem_channels": int(stem_channels), "depth": int(depth), "divisor": 2 ** int(depth),
                     **(meta or {})}}
