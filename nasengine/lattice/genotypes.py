"""Lattice architectures (DiNTS, DAST) as genotype documents.

The writers take the method's cell op list (``cell_ops``: op names in the order of the last
axis of the op logits, e.g. DiNTS's five ops or DAST's skip/conv/transformer) and the method
name; they never import a method package.

Layout of a lattice genotype (levels are absolute: lattice level d sits at level d + 1):

- ``in`` (input, layer -1, level 0);
- stems ``in -> n0_<l>`` (op ``stem``, ``factor = 2^l``) for the levels the first layer reads;
- cell edges ``n<i-1>_<s> -> n<i>_<t>`` for i = 1..L: a cell op after a 2x ``down``/``up``
  resample on cross-level edges, ``weight`` = the edge marginal ``sum_j eta_j cp_j(e)``;
- the head, as MONAI's DiNTS (our choice where the paper is silent): from the deepest active
  level of the last layer upwards, ``h<l> = n<L>_<l> (skip, if active) + head_up(h<l+1>)``;
  then ``z = head_up(h1)`` at full resolution and ``out = head_out(z)``. Every active node of the
  last layer therefore feeds the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..genotype import FORMAT, VERSION
from .decode import Decoded
from .space import SearchSpace, level_channels

__all__ = ["discrete_genotype", "continuous_genotype", "node_id", "DRAWING_KIND"]

#: The genotype's drawing hint for every lattice method (docs/PLUGIN-SURFACE.md sec. 2).
DRAWING_KIND = "lattice"


def node_id(layer: int, level: int) -> str:
    """Id of lattice node at ``layer`` and absolute ``level``."""
    return f"n{layer}_{level}"


def _check_op_axis(cell_ops: tuple[str, ...], alpha: np.ndarray) -> None:
    """``alpha``'s last axis must have one entry per op name (a mismatch would mislabel ops)."""
    if np.shape(alpha)[-1] != len(cell_ops):
        raise ValueError(f"alpha has {np.shape(alpha)[-1]} ops per edge but cell_ops names {len(cell_ops)}: {cell_ops}")


def _round(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd))


def _doc(
    *,
    space: SearchSpace,
    active: np.ndarray,
    cell_edges: list[dict],
    in_channels: int,
    out_channels: int,
    stem_filters: int,
    continuous: bool,
    meta: dict,
    method: str,
) -> dict:
    L = active.shape[0] - 1
    D = space.D
    ch = level_channels(stem_filters, D)
    nodes = [{"id": "in", "kind": "input", "layer": -1, "level": 0, "channels": in_channels}]
    edges = []
    for i in range(L + 1):
        for d in range(D):
            if active[i, d] or continuous:
                n = {"id": node_id(i, d + 1), "kind": "feature", "layer": i, "level": d + 1, "channels": ch[d]}
                if continuous:
                    n["active"] = bool(active[i, d])
                nodes.append(n)
    for d in range(D):
        if active[0, d] or continuous:
            edges.append({"source": "in", "target": node_id(0, d + 1), "op": "stem", "resample": "down",
                          "params": {"factor": 2 ** (d + 1)}})
    edges.extend(cell_edges)
    last = [d for d in range(D) if active[L, d] or continuous]
    deepest = max(last)
    for d in range(deepest, -1, -1):
        nodes.append({"id": f"h{d + 1}", "kind": "feature", "layer": L + 1, "level": d + 1, "channels": ch[d]})
        if d in last:
            edges.append({"source": node_id(L, d + 1), "target": f"h{d + 1}", "op": "skip"})
        if d < deepest:
            edges.append({"source": f"h{d + 2}", "target": f"h{d + 1}", "op": "head_up", "resample": "up"})
    nodes.append({"id": "z", "kind": "feature", "layer": L + 1, "level": 0, "channels": stem_filters})
    nodes.append({"id": "out", "kind": "output", "layer": L + 2, "level": 0, "channels": out_channels})
    edges.append({"source": "h1", "target": "z", "op": "head_up", "resample": "up"})
    edges.append({"source": "z", "target": "out", "op": "head_out"})
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "method": method,
        "in_channels": int(in_channels),
        "out_channels": int(out_channels),
        "nodes": nodes,
        "edges": edges,
        "cells": [],
        "meta": meta,
        "continuous": continuous,
    }
    doc["kind"] = DRAWING_KIND
    return doc


def _cell_edge(space: SearchSpace, i: int, e: int, op: str) -> dict:
    edge = space.edges[e]
    out = {"source": node_id(i, edge.source + 1), "target": node_id(i + 1, edge.target + 1), "op": op}
    if edge.resample != "none":
        out["resample"] = edge.resample
    return out


def discrete_genotype(
    dec: Decoded,
    space: SearchSpace,
    *,
    cell_ops: Sequence[str],
    method: str,
    in_channels: int,
    out_channels: int,
    stem_filters: int,
    marginals: np.ndarray,
    alpha: np.ndarray,
    meta: dict | None = None,
) -> dict:
    """The decoded network as a genotype (inactive nodes absent).

    Args:
        dec: the decoded architecture; marginals: ``[L, E]`` edge weights; alpha: ``[L, E, N]``.
        cell_ops: the N op names (order of alpha's last axis); method: the genotype's ``method``.
        stem_filters: filters at full resolution of the network to build (retrain channels).
    """
    cell_ops = tuple(cell_ops)
    _check_op_axis(cell_ops, alpha)
    cell_edges = []
    for i in range(dec.edges.shape[0]):
        for e in range(space.E):
            if dec.edges[i, e]:
                ed = _cell_edge(space, i, e, cell_ops[int(dec.ops[i, e])])
                ed["weight"] = _round(marginals[i, e])
                ed["op_weights"] = {o: _round(alpha[i, e, n], 3) for n, o in enumerate(cell_ops)}
                cell_edges.append(ed)
    m = dict(meta or {})
    m.update({
        "num_layers": int(dec.edges.shape[0]),
        "num_depths": space.D,
        "stem_filters": int(stem_filters),
        "cell_ops": list(cell_ops),
        "patterns": [int(r) + 1 for r in dec.patterns],
        "node_activation": dec.nodes.tolist(),
        "log_prob": _round(dec.log_prob, 6),
    })
    return _doc(space=space, active=dec.nodes.astype(bool), cell_edges=cell_edges, in_channels=in_channels,
                out_channels=out_channels, stem_filters=stem_filters, continuous=False, meta=m, method=method)


def continuous_genotype(
    space: SearchSpace,
    *,
    cell_ops: Sequence[str],
    method: str,
    in_channels: int,
    out_channels: int,
    stem_filters: int,
    edge_probs: np.ndarray,
    alpha: np.ndarray,
    dec: Decoded | None = None,
    meta: dict | None = None,
) -> dict:
    """Snapshot of the searching supernet: every node and candidate edge.

    Each cell edge carries ``weight`` = its probability ``p_e``, ``op_weights`` = softmax(alpha)
    (3 decimals) and ``op`` = the current argmax op; when ``dec`` is given, every cell edge gets
    ``"selected"`` (true on the current decoded topology, false elsewhere: the dashboard's "off"
    style) and every node ``"active"``. ``cell_ops``/``method`` as in :func:`discrete_genotype`.
    """
    cell_ops = tuple(cell_ops)
    _check_op_axis(cell_ops, alpha)
    L = edge_probs.shape[0]
    active = dec.nodes.astype(bool) if dec is not None else np.ones((L + 1, space.D), dtype=bool)
    cell_edges = []
    for i in range(L):
        for e in range(space.E):
            ed = _cell_edge(space, i, e, cell_ops[int(np.argmax(alpha[i, e]))])
            ed["weight"] = _round(edge_probs[i, e], 3)
            ed["op_weights"] = {o: _round(alpha[i, e, n], 3) for n, o in enumerate(cell_ops)}
            if dec is not None:
                ed["selected"] = bool(dec.edges[i, e])
            cell_edges.append(ed)
    m = dict(meta or {})
    m.update({"num_layers": int(L), "num_depths": space.D, "stem_filters": int(stem_filters), "cell_ops": list(cell_ops)})
    return _doc(space=space, active=active, cell_edges=cell_edges, in_channels=in_channels,
                out_channels=out_channels, stem_filters=stem_filters, continuous=True, meta=m, method=method)
