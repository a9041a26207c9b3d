"""Memory costs on the lattice, from the op registry (:mod:`nasengine.ops`).

Every figure is bytes that autograd saves for backward, per sample, fp32 (what ``OpSpec.memory``
counts). Costs are looked up by op name at each edge's own shape, so an op whose cost depends on
resolution (DAST's transformer) is costed correctly at every level.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..ops import get_op
from .space import SearchSpace, level_channels, level_shape

__all__ = ["op_cost_table", "fixed_bytes", "all_edges_cell_bytes", "plain_supernet_activation_bytes"]

BYTES = 4  # float32


def op_cost_table(space: SearchSpace, stem_filters: int, patch: Sequence[int],
                  cell_ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample memory of each discrete op on each edge (the ``M_n`` of DiNTS sec. 3.5).

    Args:
        space: the lattice; stem_filters: full-resolution filters of the network costed;
        patch: the input patch ``(x, y, z)``; cell_ops: the N op names (op-logit order).

    Returns:
        ``op_costs [E, N]``: bytes of cell op n on edge e (at the target level, c -> c), and
        ``edge_costs [E]``: bytes of the 2x resampling before the cell on a down/up edge
        (0 on same-level edges).
    """
    ch = level_channels(stem_filters, space.D)
    specs = [get_op(name) for name in cell_ops]
    op_costs = np.zeros((space.E, len(specs)))
    edge_costs = np.zeros(space.E)
    for e in space.edges:
        s_shape, t_shape = level_shape(patch, e.source + 1), level_shape(patch, e.target + 1)
        if e.resample != "none":
            edge_costs[e.index] = get_op(e.resample).memory(ch[e.source], ch[e.target], s_shape)
        for n, spec in enumerate(specs):
            op_costs[e.index, n] = spec.memory(ch[e.target], ch[e.target], t_shape)
    return op_costs, edge_costs


def fixed_bytes(space: SearchSpace, in_channels: int, out_channels: int, stem_filters: int,
                patch: Sequence[int], levels: Iterable[int]) -> int:
    """Per-sample memory of the fixed parts: the stems of ``levels`` (lattice levels) and the
    head from the deepest of them up to the full-resolution output (``stem``, ``head_up``,
    ``head_out`` of the genotype layout in :mod:`.genotypes`)."""
    levels = list(levels)
    f = stem_filters
    ch = level_channels(f, space.D)
    up_out = [f] + ch[:-1]
    total = 0
    for d in levels:
        total += get_op("stem").memory(in_channels, ch[d], tuple(patch), factor=2 ** (d + 1))
    for d in range(max(levels), -1, -1):
        total += get_op("head_up").memory(ch[d], up_out[d], level_shape(patch, d + 1))
    total += get_op("head_out").memory(f, out_channels, tuple(patch))
    return int(total)


def all_edges_cell_bytes(op_costs: np.ndarray, edge_costs: np.ndarray, num_layers: int,
                         how: str = "mean") -> float:
    """Per-sample cell memory of a discrete network with every edge of every layer on.

    Args:
        op_costs: ``[E, N]``; edge_costs: ``[E]`` (from :func:`op_cost_table`).
        how: each edge at the mean of its op costs (``"mean"``: the expected op under uniform
            op weights) or at its most expensive op (``"max"``: an upper bound).
    """
    per_edge = {"mean": op_costs.mean(1), "max": op_costs.max(1)}[how]
    return float(num_layers * (edge_costs + per_edge).sum())


def plain_supernet_activation_bytes(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int,
                                    stem_filters: int, patch: Sequence[int], cell_ops: Sequence[str]) -> int:
    """Per-sample bytes that :class:`~nasengine.lattice.supernet.LatticeSupernet` with its plain
    :class:`~nasengine.lattice.supernet.MixedLatticeNode` saves for backward.

    Per edge: the resampling op, every cell op at the target level, and each op's output
    ``[c, *S]`` (kept by the product with its architecture weight ``w_{e,n}``); plus the stems
    and head of every level. The architecture tensors (``L E N`` floats) are not counted.
    A method with a fused node (DiNTS) has its own figure.
    """
    f = stem_filters
    ch = level_channels(f, space.D)
    op_costs, edge_costs = op_cost_table(space, f, patch, cell_ops)
    outputs = np.array([len(cell_ops) * ch[e.target] * math.prod(level_shape(patch, e.target + 1)) * BYTES
                        for e in space.edges])
    per_layer = float((edge_costs + op_costs.sum(1) + outputs).sum())
    return int(num_layers * per_layer) + fixed_bytes(space, in_channels, out_channels, f, patch, range(space.D))
