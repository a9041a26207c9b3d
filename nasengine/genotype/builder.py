"""Build a plain ``nn.Module`` from a genotype (generic over nodes, edges, node ops and cells)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ..ops import OPS
from .core import GenotypeError
from .graph import ResolvedEdge, ResolvedGraph, instantiate, max_level
from .validate import resolve

__all__ = ["GenotypeNetwork", "GraphModule", "build_network", "edge_module"]


def edge_module(edge: dict | ResolvedEdge, c_in: int, c_out: int) -> nn.Module:
    """The module of one edge: ``[resample ->] op``.

    A cell op after ``resample`` down/up runs at the target resolution: the resample op maps
    ``c_in -> c_out`` and the cell op ``c_out -> c_out``. Other ops map ``c_in -> c_out`` by
    themselves with their ``params``.
    """
    if isinstance(edge, ResolvedEdge):
        op, params, resample = edge.op, edge.params, edge.resample
    else:
        op, params, resample = edge["op"], edge.get("params", {}) or {}, edge.get("resample", "none")
    spec = OPS[op]
    if spec.kind == "cell" and resample != "none":
        return nn.Sequential(OPS[resample].build(c_in, c_out), spec.build(c_out, c_out, **params))
    return spec.build(c_in, c_out, **params)


class GraphModule(nn.Module):
    """A resolved graph as a module: nodes are feature maps computed in topological order, each
    merging the outputs of its incoming edges (``sum``, ``weighted_sum`` by the stored weights,
    ``concat`` in slot order, ``inputs`` handed as a list to the node's multi-input op), then
    applying its node op; a cell node applies a cell instance to its incoming edges.

    Submodules: ``edge_ops`` (one per live edge, in document order), then, only when the graph has
    them, ``node_ops`` (nodes with an op, in document order) and ``cells`` (cell nodes, in document
    order). The wiring is fixed at construction (tuples of ints, strings and floats), so ``forward``
    has no data-dependent control flow and ``torch.export`` traces it into a static graph.
    Intermediate features are dropped after their last use.

    Shapes: ``forward(*inputs)`` takes one ``[B, C_k, *S_k]`` tensor per input node and returns
    the output node's ``[B, C_out, *S_out]``.
    """

    def __init__(self, graph: ResolvedGraph, cells: dict[str, ResolvedGraph]):
        super().__init__()
        pos = {nid: i for i, nid in enumerate(graph.order)}
        self.edge_ops = nn.ModuleList()
        edge_slot: dict[int, int] = {}
        for k, e in graph.edges.items():
            edge_slot[k] = len(self.edge_ops)
            self.edge_ops.append(edge_module(e, e.c_in, e.c_out))
        node_op: dict[str, int] = {}
        cell_of: dict[str, int] = {}
        with_op = [n for n in graph.nodes.values() if n.op is not None]
        with_cell = [n for n in graph.nodes.values() if n.cell is not None]
        if with_op:
            self.node_ops = nn.ModuleList()
            for n in with_op:
                node_op[n.id] = len(self.node_ops)
                self.node_ops.append(OPS[n.op].build(n.op_c_in, n.channels, **n.op_params))
        if with_cell:
            self.cells = nn.ModuleList()
            for n in with_cell:
                cell_of[n.id] = len(self.cells)
                self.cells.append(GraphModule(instantiate(cells[n.cell], n.cell_channels, n.cell_level), cells))
        self.input_pos = tuple(pos[nid] for nid in graph.inputs)
        self.output_pos = pos[graph.output]
        last_use: dict[int, int] = {}
        for nid in graph.order:
            for k in graph.nodes[nid].inputs:
                last_use[pos[graph.edges[k].source]] = pos[nid]
        # plan: (node position, combine, ((edge module, source position, weight), ...), node op, cell, freed positions)
        plan = []
        for nid in graph.order:
            n = graph.nodes[nid]
            p = pos[nid]
            if p in self.input_pos:
                continue
            inc = tuple((edge_slot[k], pos[graph.edges[k].source], float(graph.edges[k].weight or 0.0)) for k in n.inputs)
            free = tuple(s for s, last in last_use.items() if last == p and s != self.output_pos)
            plan.append((p, n.combine, inc, node_op.get(nid, -1), cell_of.get(nid, -1), free))
        self.plan = tuple(plan)
        self.num_nodes = len(graph.order)
        self.max_level = max_level(graph, cells)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor | None] = [None] * self.num_nodes
        for p, x in zip(self.input_pos, inputs):
            feats[p] = x
        for p, combine, inc, op, cell, free in self.plan:
            if combine == "sum" or combine == "weighted_sum":
                out = None
                for k, s, w in inc:
                    y = self.edge_ops[k](feats[s])
                    if combine == "weighted_sum":
                        y = y * w  # a Python float: autograd saves nothing for it
                    out = y if out is None else out + y
            else:
                ys = [self.edge_ops[k](feats[s]) for k, s, _ in inc]
                if combine == "cell":
                    out = self.cells[cell](*ys)
                elif combine == "concat":
                    out = torch.cat(ys, dim=1)
                else:  # "inputs": the node's multi-input op takes them as a list
                    out = ys
            if op >= 0:
                out = self.node_ops[op](out)
            feats[p] = out
            for s in free:
                feats[s] = None
        return feats[self.output_pos]


class GenotypeNetwork(GraphModule):
    """The network of a genotype document (validated here): ``[B, in_channels, *S] -> [B,
    out_channels, *S]`` with every size of ``S`` divisible by ``2 ** max_level``.

    For a version-1 style document (summing nodes only) the submodules are exactly ``edge_ops.N``
    in document order, as the version-1 builder made them, so seeded initialisation and saved
    state dicts carry over.
    """

    def __init__(self, doc: dict):
        r = resolve(doc)
        super().__init__(r.graph, r.cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


def build_network(doc: dict) -> nn.Module:
    """Validate ``doc`` and build its network (weights freshly initialised).

    Raises:
        GenotypeError: the document is invalid, or it is a continuous snapshot.
    """
    r = resolve(doc)
    if r.doc.get("continuous", False):
        raise GenotypeError("continuous", "a continuous snapshot is not a discrete architecture; decode it first")
    return GenotypeNetwork(r.doc)
