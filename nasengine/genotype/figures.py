"""Derived figures of a genotype at a patch size: parameters, FLOPs, activation memory."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..ops import OPS
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


def graph_costs(graph: ResolvedGraph, cells: dict[str, ResolvedGraph], patch: Sequence[int]) -> tuple[int, int]:
    """``(memory_bytes, flops)`` per sample of a resolved graph (cells expanded) for
    a network input of spatial size ``patch``. Merges (sums, concatenations, constant weights)
    save nothing for backward and cost no convolution FLOPs."""

    def shape(level: int) -> list[int]:
        return [s // 2**level for s in patch]

    memory = flops = 0
    for e in graph.edges.values():
        m, f = edge_costs(e, e.c_in, e.c_out, shape(graph.nodes[e.source].level))
        memory += m
        flops += f
    for n in graph.nodes.values():
        if n.op is not None:
            spec = OPS[n.op]
            memory += spec.memory(n.op_c_in, n.channels, shape(n.level), **n.op_params)
            flops += spec.flops(n.op_c_in, n.channels, shape(n.level), **n.op_params)
        if n.cell is not None:
            m, f = graph_costs(instantiate(cells[n.cell], n.cell_channels, n.cell_level), cells, patch)
            memory, flops = memory + m, flops + f
    return memory, flops


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
