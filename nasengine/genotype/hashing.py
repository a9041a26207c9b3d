"""``canonical_hash``: one id per discrete architecture, for deduplicating candidates."""

from __future__ import annotations

import hashlib
import json

from .core import GenotypeError
from .graph import ResolvedGraph
from .validate import resolve

__all__ = ["canonical_hash", "canonical_form"]

#: Merge rules whose result depends on the order of the inputs.
_ORDERED = ("concat", "inputs", "cell")


def _graph_form(graph: ResolvedGraph) -> dict:
    """Nodes and live edges of ``graph``, sorted, with only what changes the network."""
    nodes = []
    edges = []
    for n in graph.nodes.values():
        nodes.append({
            "id": n.id, "kind": n.kind, "channels": n.channels, "combine": n.combine,
            "op": None if n.op is None else {"name": n.op, "params": n.op_params}, "cell": n.cell,
        })
        for rank, k in enumerate(n.inputs):
            e = graph.edges[k]
            edges.append({
                "source": e.source, "target": e.target, "op": e.op, "resample": e.resample, "params": e.params,
                "slot": rank if n.combine in _ORDERED else None,
                "weight": e.weight if n.combine == "weighted_sum" else None,
            })

    def key(x: dict) -> str:
        return json.dumps(x, sort_keys=True)

    return {"nodes": sorted(nodes, key=key), "edges": sorted(edges, key=key)}


def canonical_form(doc: dict) -> dict:
    """The architecture of a discrete genotype alone, as plain sorted data.

    Kept: node ids, kinds, channels, merge rules, node ops, cell references, the live edges (gates
    applied: pruned edges and dead nodes are gone) with op, resample, params, their rank among
    the target's inputs where the order matters (concat, multi-input op, cell) and their weight
    where it scales the output (``weighted_sum``), and the cell types used. Dropped: layout and
    search bookkeeping (``layer``, ``level`` (implied by the wiring), ``stage``, ``position``,
    ``weight`` elsewhere, ``op_weights``, ``gate`` values, ``role``, ``selected``, ``derived``,
    ``meta``, ``method``, ``version``, edge order).
    """
    r = resolve(doc)
    if r.doc.get("continuous", False):
        raise GenotypeError("continuous", "a continuous snapshot has no canonical hash; decode it first")
    used = sorted({n.cell for n in r.graph.nodes.values() if n.cell is not None})
    return {
        "network": _graph_form(r.graph),
        "cells": {name: _graph_form(r.cells[name]) for name in used},
    }


def canonical_hash(doc: dict) -> str:
    """sha256 hex digest of :func:`canonical_form`: equal for documents that build the same network."""
    text = json.dumps(canonical_form(doc), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
