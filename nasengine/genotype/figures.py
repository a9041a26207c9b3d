"""Derived figures of a genotype at a patch size: parameters, FLOPs, activation memory."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..ops import OPS
from ..ops.table import BYTES
from .core import GenotypeError
from .graph import ResolvedEdge, ResolvedGraph, instantiate, max_level
from .validate import resolve

__all__ = ["derive_figures", "edge_costs", "graph_costs"]


def edge_costs(edge: dict | ResolvedEdge, c_in: int, c_out: int, in_shape: Sequence[int]) -> tuple[int, int]:
    """``(memory_bytes, flops)`` per sample of one edge whose source has spatial ``in_shape``."""
    if isinstance(edge, ResolvedEdge):
        op, params, resample = edge.op, edge.params, edge.resample
    else:
        op, params, resample = edge["op"], edge.get("params", {}) or {}, edge.get("resample", "none")
    spec = OPS[op]
    if spec.kind == "cell" and resample != "none":
        rs = OPS[resample]
        mid = rs.out_shape(in_shape)
        return (
            rs.memory(c_in, c_out, in_shape) + spec.memory(c_out, c_out, mid, **params),
            rs.flops(c_in, c_out, in_shape) + spec.flops(c_out, c_out, mid, **params),
        )
    return spec.memory(c_in, c_out, in_shape, **params), spec.flops(c_in, c_out, in_shape, **params)


def prod(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


class _SavedInputs:
    """Tensors that some op keeps as its input (``OpSpec.saves_input``), counted once each.

    Every node value and edge output gets a tensor id; an identity op (``skip``) or a sum of a
    single edge passes its input's id on (the same storage), so two ops saving "different" inputs
    that are one storage are counted once, as autograd's storages are.
    """

    def __init__(self):
        self.bytes: dict[int, int] = {}
        self.count = 0

    def new(self) -> int:
        self.count += 1
        return self.count

    def save(self, tensor: int | None, channels: int, shape: Sequence[int]) -> None:
        if tensor is not None:  # None: the image, which needs no grad, so nothing saves it
            self.bytes[tensor] = int(channels) * prod(shape) * BYTES


def graph_costs(graph: ResolvedGraph, cells: dict[str, ResolvedGraph], patch: Sequence[int],
                inputs: Sequence[int | None] | None = None, saved: _SavedInputs | None = None) -> tuple[int, int]:
    """``(memory_bytes, flops)`` per sample of a resolved graph (cells expanded) for a network
    input of spatial size ``patch``: the ops' own estimates plus, once each, the tensors that ops
    with ``saves_input`` keep. Merges (sums, concatenations, constant weights) save nothing for
    backward and cost no convolution FLOPs.

    Args:
        inputs: tensor ids of the graph's inputs (a cell instance's incoming edge outputs);
            None for the network, whose image is never saved.
        saved: the ledger shared with the enclosing graph (new when None).
    """
    memory, flops, _ = _costs(graph, cells, patch, inputs, saved)
    return memory, flops


def _costs(graph, cells, patch, inputs, saved):
    """:func:`graph_costs` plus the tensor id of the graph's output."""
    top = saved is None
    saved = saved if saved is not None else _SavedInputs()
    tensor: dict[str, int | None] = dict(zip(graph.inputs, inputs if inputs is not None else [None] * len(graph.inputs)))

    def shape(level: int) -> list[int]:
        return [s // 2**level for s in patch]

    memory = flops = 0
    for nid in graph.order:
        n = graph.nodes[nid]
        if nid in tensor:
            continue
        outs: list[int | None] = []
        for k in n.inputs:
            e = graph.edges[k]
            in_shape = shape(graph.nodes[e.source].level)
            m, f = edge_costs(e, e.c_in, e.c_out, in_shape)
            memory, flops = memory + m, flops + f
            spec = OPS[e.op]
            if spec.kind == "cell" and e.resample != "none":  # the cell op reads the resampled tensor
                if spec.saves_input:
                    saved.save(saved.new(), e.c_out, OPS[e.resample].out_shape(in_shape))
                outs.append(saved.new())
            else:
                if spec.saves_input:
                    saved.save(tensor[e.source], e.c_in, in_shape)
                outs.append(tensor[e.source] if spec.identity else saved.new())
        if n.cell is not None:
            m, f, value = _costs(instantiate(cells[n.cell], n.cell_channels, n.cell_level), cells, patch, outs, saved)
            memory, flops = memory + m, flops + f
        elif n.combine == "sum" and len(outs) == 1:
            value = outs[0]  # a sum of one edge is that edge's output tensor
        else:
            value = saved.new()
        if n.op is not None:
            spec = OPS[n.op]
            memory += spec.memory(n.op_c_in, n.channels, shape(n.level), **n.op_params)
            flops += spec.flops(n.op_c_in, n.channels, shape(n.level), **n.op_params)
            if spec.saves_input:
                if n.combine == "inputs":
                    for t, c in zip(outs, n.op_c_in):
                        saved.save(t, c, shape(n.level))
                else:
                    saved.save(value, n.op_c_in, shape(n.level))
            value = value if spec.identity else saved.new()
        tensor[nid] = value
    if top:
        memory += sum(saved.bytes.values())
    return memory, flops, tensor[graph.output]


def derive_figures(doc: dict, patch_size: Sequence[int]) -> dict:
    """Parameters, FLOPs and memory of the network of ``doc`` for one ``patch_size`` sample.

    Gates are pruned and cell instances expanded, as the builder does.

    - ``parameters``: trainable parameters (counted on the meta device: nothing is allocated);
      None for a continuous snapshot.
    - ``flops``: 2 per multiply-accumulate of every convolution, per sample.
    - ``memory_bytes``: activation bytes held for backward per sample (sum of the op estimates
      of :mod:`nasengine.ops`; multiply by the batch size for a batch).

    Returns:
        ``{"parameters", "flops", "memory_bytes", "patch_size"}``, the genotype's ``derived`` field.
    """
    plan = (doc.get("meta") or {}).get("network_plan")
    if plan:  # a hand-designed control: its nodes only draw the network (nasengine.controls)
        from nasengine.controls.handdesigned import planned_figures

        return planned_figures(plan, patch_size)
    r = resolve(doc)
    patch = [int(s) for s in patch_size]
    deepest = max_level(r.graph, r.cells)
    if any(s % (2**deepest) for s in patch):
        raise GenotypeError("derived.patch_size", f"patch {patch} must be divisible by {2**deepest} (levels up to {deepest})")
    memory, flops = graph_costs(r.graph, r.cells, patch)
    if r.doc.get("continuous", False):
        parameters = None
    else:
        from .builder import GenotypeNetwork

        with torch.device("meta"):
            net = GenotypeNetwork(r.doc)
        parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return {"parameters": parameters, "flops": int(flops), "memory_bytes": int(memory), "patch_size": patch}
