"""UXNet derivation (sec. 2.2): gate threshold, dead-node removal, argmax ops, a kept path,
and the genotype document (version 2, kind ``"graph"``).

Rules, in order:

1. keep a gated connection when sigma(beta) >= tau (tau = 0.75 by default; the paper's ablation
   tried 0.60 and 0.90); constant connections (the encoder SBB chain) are always kept;
2. delete, iteratively to a fixed point, every node without a kept outgoing connection (rule
   (b) of the paper: "once the aggregation node has no connection with features in the next
   stage, we delete the relevant connections") and every node without a kept input (its
   value would be nothing), with their connections. N(0, 0) (fed by the stem) and N(D, 0)
   (read by the head) are never dead for want of an input / an output;
3. each SBB layer takes the op of largest alpha (DARTS' argmax; the first on a tie);
4. when tau cuts every path to N(D, 0), the paper says nothing: we keep the best path, the one
   whose gates have the largest product (sum of log sigma), in addition to whatever survived
   and prune again. Its connections are kept whatever their gate, and ``meta.gate_fallback``
   reports the path, its gates and the threshold.

The document holds every node and connection of the space: gated edges carry ``gate`` =
sigma(beta) (and ``weight`` = the same, the edge strength the dashboard draws) and the top
level ``gates.threshold`` = tau, so the shared validator and builder prune exactly what rules
1-2 prune (tests hold the two equal). Fallback edges keep ``weight`` but drop ``gate`` (they
are kept whatever the threshold). An SBB is two edges through its own node (id
``sbb:<source>-<target>``, at the source's level):
the normal layer, then the reduction (``resample: "down"``) or expansion (``"up"``) layer (its
node's ``stage`` is 0 in the encoder, the source's stage + 0.5 in the decoder); the
gate sits on the second edge, so a pruned SBB's node is dead and goes with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .ops import ALIGN, EXPANSION_OPS, HEAD, NORMAL_OPS, REDUCTION_OPS, STEM
from .space import DECODER_SBB, ENCODER_SBB, TRANSFORM, Connection, Node, Space

__all__ = ["FORMAT", "VERSION", "INPUT_ID", "OUTPUT_ID", "Derivation", "prune", "best_path", "derive",
           "argmax", "genotype_document", "sbb_node_id"]

FORMAT = "voxelsearch-genotype"
VERSION = 2
INPUT_ID, OUTPUT_ID = "input", "output"


def sbb_node_id(c: Connection) -> str:
    """Id of the node between an SBB's two layers."""
    return f"sbb:{c.source.id}-{c.target.id}"


@dataclass(frozen=True)
class Derivation:
    """What rules 1-4 keep.

    Attributes:
        kept: indices of the connections in the derived network.
        live: nodes of the derived network.
        forced: indices of connections kept by the fallback path (empty when none was needed).
        fallback: the report that goes into ``meta.gate_fallback`` (None when none was needed).
    """

    kept: frozenset[int]
    live: frozenset[Node]
    forced: frozenset[int] = frozenset()
    fallback: dict[str, Any] | None = field(default=None)

    def dead_nodes(self, space: Space) -> list[str]:
        """Ids of the aggregation nodes that rules 1-2 delete (SBB nodes not listed)."""
        return [n.id for n in space.nodes if n not in self.live]


def prune(space: Space, gates: Sequence[float], tau: float,
          forced: frozenset[int] = frozenset()) -> tuple[frozenset[int], frozenset[Node]]:
    """Rules 1-2: ``(kept connection indices, live nodes)``; the output may end up dead.

    Args:
        gates: sigma(beta) per gate index (``len == space.n_gates``).
        forced: connections kept whatever their gate.
    """
    if len(gates) != space.n_gates:
        raise ValueError(f"expected {space.n_gates} gates, got {len(gates)}")
    keep = {c.index for c in space.connections
            if not c.gated or c.index in forced or float(gates[c.gate]) >= tau}
    live = set(space.nodes)
    source, sink = space.input_node, space.output_node
    while True:
        has_in = {space.connections[k].target for k in keep}
        has_out = {space.connections[k].source for k in keep}
        dead = {n for n in live if (n != source and n not in has_in) or (n != sink and n not in has_out)}
        if not dead:
            return frozenset(keep), frozenset(live)
        live -= dead
        keep = {k for k in keep if space.connections[k].source in live and space.connections[k].target in live}


def best_path(space: Space, gates: Sequence[float]) -> list[Connection]:
    """Connections of the path N(0,0) -> N(D,0) with the largest product of gates (constant
    connections count 1); the first best in connection order on a tie."""
    score: dict[Node, float] = {space.input_node: 0.0}
    via: dict[Node, Connection] = {}
    for node in space.nodes:
        for c in space.incoming[node]:
            if c.source not in score:
                continue
            g = float(gates[c.gate]) if c.gated else 1.0
            s = score[c.source] + (math.log(g) if g > 0 else -math.inf)
            if node not in score or s > score[node]:
                score[node], via[node] = s, c
    path, node = [], space.output_node
    while node != space.input_node:
        path.append(via[node])
        node = via[node].source
    return path[::-1]


def derive(space: Space, gates: Sequence[float], tau: float) -> Derivation:
    """Rules 1, 2 and 4 (see the module docstring)."""
    kept, live = prune(space, gates, tau)
    if space.output_node in live:
        return Derivation(kept, live)
    path = best_path(space, gates)
    forced = frozenset(c.index for c in path if c.gated)
    kept, live = prune(space, gates, tau, forced)
    report = {
        "reason": f"every gate on every path to {space.output_node.id} is below the threshold "
                  f"{tau}: the path with the largest product of gates is kept",
        "threshold": float(tau),
        "path": [path[0].source.id] + [c.target.id for c in path],
        "gates": [round(float(gates[c.gate]), 6) if c.gated else None for c in path],
    }
    return Derivation(kept, live, forced, report)


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first on a tie."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def _second_ops(c: Connection) -> tuple[str, ...]:
    return REDUCTION_OPS if c.kind == ENCODER_SBB else EXPANSION_OPS


def genotype_document(space: Space, *, gates: Sequence[float], tau: float,
                      normal_weights: Sequence[Sequence[float]], reduction_weights: Sequence[Sequence[float]],
                      expansion_weights: Sequence[Sequence[float]], in_channels: int, out_channels: int,
                      channels: int, continuous: bool = False, meta: dict[str, Any] | None = None,
                      ndigits: int = 6) -> dict[str, Any]:
    """The genotype of the space under rules 1-4.

    Args:
        gates: sigma(beta) per gate index.
        normal_weights: ``[n_sbb][7]`` op weights (softmax(alpha) or alpha) of the normal layers.
        reduction_weights / expansion_weights: ``[n_encoder_sbb][3]`` / ``[n_decoder_sbb][2]``.
        channels: C, the channels at level 0 (level l has C * 2^l).
        continuous: a live snapshot: ``continuous: true``, every edge with ``op_weights``,
            ``selected`` (kept by the current derivation) and nodes with ``active``.
        meta: method metadata merged into ``meta``.
    """
    d = derive(space, gates, tau)

    def r(x: float) -> float:
        return round(float(x), ndigits)

    def width(level: int) -> int:
        return int(channels) * 2**level

    nodes: list[dict[str, Any]] = [{"id": INPUT_ID, "kind": "input", "channels": int(in_channels), "level": 0}]
    for n in space.nodes:
        node = {"id": n.id, "kind": "feature", "channels": width(n.level), "level": n.level, "stage": n.stage}
        if continuous:
            node["active"] = n in d.live
        nodes.append(node)
    edges: list[dict[str, Any]] = [{"source": INPUT_ID, "target": space.input_node.id, "op": STEM}]
    for c in space.connections:
        last: dict[str, Any] = {"target": c.target.id}
        if c.kind == TRANSFORM:
            last.update(source=c.source.id, op=ALIGN, params={"shift": c.shift},
                        resample="down" if c.shift > 0 else "up" if c.shift < 0 else "none")
            first = None
        else:
            mid = sbb_node_id(c)
            nw = normal_weights[c.sbb]
            sw = (reduction_weights if c.kind == ENCODER_SBB else expansion_weights)[c.second]
            ops = _second_ops(c)
            mid_node = {"id": mid, "kind": "feature", "channels": width(c.source.level), "level": c.source.level,
                        "stage": c.source.stage + (0.5 if c.kind == DECODER_SBB else 0.0)}
            if continuous:
                mid_node["active"] = c.index in d.kept
            nodes.append(mid_node)
            first = {"source": c.source.id, "target": mid, "op": NORMAL_OPS[argmax(nw)]}
            last.update(source=mid, op=ops[argmax(sw)], resample="down" if c.kind == ENCODER_SBB else "up")
            if continuous:
                first["op_weights"] = {name: r(w) for name, w in zip(NORMAL_OPS, nw)}
                last["op_weights"] = {name: r(w) for name, w in zip(ops, sw)}
                first["selected"] = c.index in d.kept
        if c.gated:
            g = r(gates[c.gate])
            last["weight"] = g
            if c.index not in d.forced:
                last["gate"] = g
        if continuous:
            last["selected"] = c.index in d.kept
        if first is not None:
            edges.append(first)
        edges.append(last)
    edges.append({"source": space.output_node.id, "target": OUTPUT_ID, "op": HEAD})
    nodes.append({"id": OUTPUT_ID, "kind": "output", "channels": int(out_channels), "level": 0})
    info = {
        "depth": space.depth,
        "channels": int(channels),
        "tau": float(tau),
        "encoder_chain_constant": space.encoder_chain_constant,
        "gated_connections": space.n_gates,
        "constant_connections": len(space.constant_connections),
        "kept_connections": len(d.kept),
        "kept_gated_connections": sum(1 for k in d.kept if space.connections[k].gated),
        "dead_nodes": d.dead_nodes(space),
        "gate_fallback": d.fallback,
        "divisor": 2**space.depth,
    }
    info.update(meta or {})
    return {
        "format": FORMAT, "version": VERSION, "method": "uxnet", "kind": "graph",
        "in_channels": int(in_channels), "out_channels": int(out_channels),
        "nodes": nodes, "edges": edges, "cells": [], "gates": {"threshold": float(tau)},
        "meta": info, "continuous": bool(continuous),
    }
