"""Build a plain ``nn.Module`` from a genotype (generic over nodes and edges)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..ops import OPS
from .format import GenotypeError, topological_order, validate

__all__ = ["GenotypeNetwork", "build_network", "edge_module"]


def edge_module(edge: dict, c_in: int, c_out: int) -> nn.Module:
    """The module of one edge: ``[resample ->] op``.

    A cell op after ``resample`` down/up runs at the target resolution: the resample op maps
    ``c_in -> c_out`` and the cell op ``c_out -> c_out``. Other ops map ``c_in -> c_out`` by
    themselves with their ``params``.
    """
    spec = OPS[edge["op"]]
    params = edge.get("params", {}) or {}
    resample = edge.get("resample", "none")
    if spec.kind == "cell" and resample != "none":
        return nn.Sequential(OPS[resample].build(c_in, c_out), spec.build(c_out, c_out, **params))
    return spec.build(c_in, c_out, **params)


class GenotypeNetwork(nn.Module):
    """A network whose nodes are feature maps and whose edges are ops; a node is the sum of its
    incoming edges, computed in topological order.

    The wiring is fixed at construction (tuples of ints), so ``forward`` has no data-dependent
    control flow and ``torch.export`` traces it into a static graph. Intermediate features are
    dropped after their last use.

    Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]`` with every size of ``S`` divisible by
    ``2 ** max_level``.
    """

    def __init__(self, doc: dict):
        super().__init__()
        nodes = doc["nodes"]
        ids = [n["id"] for n in nodes]
        order = topological_order(ids, [(e["source"], e["target"]) for e in doc["edges"]])
        pos = {nid: i for i, nid in enumerate(order)}
        by_id = {n["id"]: n for n in nodes}
        self.edge_ops = nn.ModuleList()
        incoming: dict[str, list[tuple[int, int]]] = {nid: [] for nid in ids}
        for e in doc["edges"]:
            k = len(self.edge_ops)
            self.edge_ops.append(edge_module(e, by_id[e["source"]]["channels"], by_id[e["target"]]["channels"]))
            incoming[e["target"]].append((k, pos[e["source"]]))
        self.input_pos = pos[next(n["id"] for n in nodes if n["kind"] == "input")]
        self.output_pos = pos[next(n["id"] for n in nodes if n["kind"] == "output")]
        # plan: (node position, ((edge index, source position), ...), positions freed afterwards)
        last_use = {}
        for nid in order:
            for _, s in incoming[nid]:
                last_use[s] = pos[nid]
        plan = []
        for nid in order:
            p = pos[nid]
            if p == self.input_pos:
                continue
            free = tuple(s for s, last in last_use.items() if last == p and s != self.output_pos)
            plan.append((p, tuple(incoming[nid]), free))
        self.plan = tuple(plan)
        self.num_nodes = len(order)
        self.max_level = max(n["level"] for n in nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor | None] = [None] * self.num_nodes
        feats[self.input_pos] = x
        for p, inc, free in self.plan:
            out = None
            for k, s in inc:
                y = self.edge_ops[k](feats[s])
                out = y if out is None else out + y
            feats[p] = out
            for s in free:
                feats[s] = None
        return feats[self.output_pos]


def build_network(doc: dict) -> nn.Module:
    """Validate ``doc`` and build its network (weights freshly initialised).

    Raises:
        GenotypeError: the document is invalid, or it is a continuous snapshot.
    """
    validate(doc)
    if doc.get("continuous", False):
        raise GenotypeError("continuous", "a continuous snapshot is not a discrete architecture; decode it first")
    return GenotypeNetwork(doc)
