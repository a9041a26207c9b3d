"""Memory of a DiNTS search and of its retraining, from the op costs of :mod:`nasengine.ops`.

All activation figures are bytes that autograd holds for backward (what the op table counts);
parameters add weights, gradients and one optimiser buffer (SGD momentum) in float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...ops import DINTS_CELL_OPS, OPS
from .space import SearchSpace, get_space

__all__ = ["MemoryEstimate", "op_cost_table", "supernet_activation_bytes", "estimate_memory", "retrain_filters"]

BYTES = 4

try:  # the shared dataclass, when the methods package provides it
    from ..base import MemoryEstimate  # type: ignore
except Exception:  # pragma: no cover - fallback with the contract's fields

    @dataclass
    class MemoryEstimate:  # type: ignore[no-redef]
        search_bytes: int
        retrain_bytes: int
        details: dict = field(default_factory=dict)


def _shape(patch: Sequence[int], level: int) -> tuple[int, ...]:
    return tuple(int(s) // 2**level for s in patch)


def retrain_filters(stem_filters: int, multiplier: float) -> int:
    """Full-resolution filters of the retrained network."""
    return max(1, int(round(stem_filters * multiplier)))


def op_cost_table(space: SearchSpace, stem_filters: int, patch: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample memory costs of the discrete ops on each edge (the ``M_n`` of sec. 3.5).

    Returns:
        ``op_costs [E, N]``: bytes of cell op n on edge e (at the target level), and
        ``edge_costs [E]``: bytes of the 2x resampling before the cell on a down/up edge.
    """
    ch = [stem_filters * 2 ** (d + 1) for d in range(space.D)]
    op_costs = np.zeros((space.E, len(DINTS_CELL_OPS)))
    edge_costs = np.zeros(space.E)
    for e in space.edges:
        s_shape, t_shape = _shape(patch, e.source + 1), _shape(patch, e.target + 1)
        if e.resample != "none":
            edge_costs[e.index] = OPS[e.resample].memory(ch[e.source], ch[e.target], s_shape)
        for n, op in enumerate(DINTS_CELL_OPS):
            op_costs[e.index, n] = OPS[op].memory(ch[e.target], ch[e.target], t_shape)
    return op_costs, edge_costs


def _fixed_bytes(space: SearchSpace, in_channels: int, out_channels: int, f: int, patch, levels) -> int:
    """Stems of ``levels`` plus the head from the deepest of them (per sample)."""
    ch = [f * 2 ** (d + 1) for d in range(space.D)]
    up_out = [f] + ch[:-1]
    total = 0
    for d in levels:
        total += OPS["stem"].memory(in_channels, ch[d], tuple(patch), factor=2 ** (d + 1))
    for d in range(max(levels), -1, -1):
        total += OPS["head_up"].memory(ch[d], up_out[d], _shape(patch, d + 1))
    total += OPS["head_out"].memory(f, out_channels, tuple(patch))
    return total


def supernet_activation_bytes(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int,
                              stem_filters: int, patch: Sequence[int]) -> int:
    """Bytes the supernet (:class:`DiNTSSupernet`) saves for backward per sample.

    Per feature node with n incoming edges and c channels on S voxels: the resampling ops, the
    concatenated inputs (kept for the skip weights), their ReLU, 3 P3D middle tensors and the
    4 op outputs under the shared InstanceNorm: ``9 n c S`` floats.
    """
    f = stem_filters
    ch = [f * 2 ** (d + 1) for d in range(space.D)]
    layer = 0
    for t in range(space.D):
        rng = space.edges_into(t)
        n, c, s = len(rng), ch[t], math.prod(_shape(patch, t + 1))
        layer += (9 * n * c * s + 8 * n * c) * BYTES
        for e in rng:
            edge = space.edges[e]
            if edge.resample != "none":
                layer += OPS[edge.resample].memory(ch[edge.source], c, _shape(patch, edge.source + 1))
    return num_layers * layer + _fixed_bytes(space, in_channels, out_channels, f, patch, range(space.D))


def _supernet_parameters(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int, f: int) -> int:
    ch = [f * 2 ** (d + 1) for d in range(space.D)]
    up_out = [f] + ch[:-1]
    total = sum(in_channels * ch[d] * 27 + 2 * ch[d] for d in range(space.D))  # stems
    total += sum(ch[d] * up_out[d] * 27 + 2 * up_out[d] for d in range(space.D))  # head_up
    total += f * f * 27 + 2 * f + f * out_channels + out_channels  # head_out
    per_layer = 0
    for e in space.edges:
        c = ch[e.target]
        per_layer += 63 * c * c + 8 * c  # conv3 (27) + 3 P3D (9 + 3) + 4 norms
        if e.resample == "down":
            per_layer += ch[e.source] * c + 2 * c
        elif e.resample == "up":
            per_layer += ch[e.source] * c + 2 * c
    per_layer += space.E * (len(DINTS_CELL_OPS) + 1)  # arch parameters
    return total + num_layers * per_layer


def _cell_parameters(space: SearchSpace, f: int, how: str) -> float:
    """Parameters of one layer of a discrete network with every edge on, each cell op being
    the mean over the five ops (``how="mean"``) or the largest (``"max"``: conv_3x3x3)."""
    ch = [f * 2 ** (d + 1) for d in range(space.D)]
    total = 0.0
    for e in space.edges:
        c = ch[e.target]
        total += (63 * c * c + 8 * c) / 5 if how == "mean" else 27 * c * c + 2 * c
        if e.resample != "none":
            total += ch[e.source] * c + 2 * c
    return total


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Memory to search and to retrain with ``config`` (a :class:`DiNTSConfig`).

    - ``search_bytes``: the supernet's saved activations at the search patch and batch, plus
      parameters, gradients and SGD momentum (float32).
    - ``retrain_bytes``: the EXPECTED discrete network at the retrain channels, patch and batch:
      stems and head of all levels, plus ``sigma`` times the cell memory with every edge on and
      each cell at the mean of the op costs (the memory loss of eq. 10 drives the searched
      architecture to that fraction of ``M_a``), plus weights, gradients and momentum likewise.
      ``details["retrain_worst_case_bytes"]`` is the bound with every edge on and each cell at
      its most expensive op.
    """
    space = get_space(config.num_depths)
    patch = list(config.patch_size)
    L = config.num_layers
    f = config.stem_filters
    act = supernet_activation_bytes(space, L, in_channels, out_channels, f, patch)
    params = _supernet_parameters(space, L, in_channels, out_channels, f)
    search = act * config.batch_size + 3 * params * BYTES

    fr = retrain_filters(f, config.retrain_channel_multiplier)
    op_costs, edge_costs = op_cost_table(space, fr, patch)
    fixed = _fixed_bytes(space, in_channels, out_channels, fr, patch, range(space.D))
    cells_all_mean = L * float((edge_costs + op_costs.mean(1)).sum())
    cells_all_max = L * float((edge_costs + op_costs.max(1)).sum())
    fixed_params = _supernet_parameters(space, 0, in_channels, out_channels, fr)
    cell_params_mean = L * _cell_parameters(space, fr, "mean")
    cell_params_max = L * _cell_parameters(space, fr, "max")
    b = config.retrain_batch_size
    expected_act = fixed + config.sigma * cells_all_mean
    expected_params = fixed_params + config.sigma * cell_params_mean
    retrain = int(expected_act * b + 3 * expected_params * BYTES)
    worst = int((fixed + cells_all_max) * b + 3 * (fixed_params + cell_params_max) * BYTES)
    details = {
        "search_activation_bytes_per_sample": int(act),
        "search_parameters": int(params),
        "search_batch_size": int(config.batch_size),
        "retrain_stem_filters": fr,
        "retrain_activation_bytes_per_sample": int(expected_act),
        "retrain_batch_size": int(b),
        "retrain_worst_case_bytes": worst,
        "patch_size": patch,
        "retrain_estimate": "expected network at the memory budget sigma",
    }
    return MemoryEstimate(search_bytes=int(search), retrain_bytes=retrain, details=details)
