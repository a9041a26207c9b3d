"""Memory of a DAST search and of its retraining, from the op costs of the registry.

Activation figures are bytes autograd holds for backward (fp32), as the op registry counts
them; parameters add weights, gradients and one SGD momentum buffer. The lattice-generic parts
(stems and head) come from :mod:`nasengine.lattice.costs`; the op cost table is DAST's own
because the transformer's cost needs its parameters (the shared ``op_cost_table`` calls
``OpSpec.memory`` without op parameters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...lattice.costs import all_edges_cell_bytes, fixed_bytes
from ...lattice.space import SearchSpace, get_space, level_channels, level_shape
from ...ops import get_op
from ..base import MemoryEstimate
from .ops import DAST_CELL_OPS, TRANSFORMER

__all__ = ["op_cost_table", "supernet_activation_bytes", "estimate_memory", "retrain_filters",
           "op_parameters"]

BYTES = 4


def retrain_filters(stem_filters: int, multiplier: float) -> int:
    """Full-resolution filters of the retrained network."""
    return max(1, int(round(stem_filters * multiplier)))


def op_cost_table(space: SearchSpace, stem_filters: int, patch: Sequence[int],
                  op_params: Mapping[str, Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample bytes of each DAST op on each edge at its target level's shape.

    Args:
        op_params: ``{op name: params}`` passed to ``OpSpec.memory`` (the transformer's).

    Returns:
        ``op_costs [E, 3]`` (op-logit order) and ``edge_costs [E]`` (the 2x resampling before
        the cell on down/up edges, 0 on same-level edges).
    """
    ch = level_channels(stem_filters, space.D)
    op_costs = np.zeros((space.E, len(DAST_CELL_OPS)))
    edge_costs = np.zeros(space.E)
    for e in space.edges:
        s_shape, t_shape = level_shape(patch, e.source + 1), level_shape(patch, e.target + 1)
        if e.resample != "none":
            edge_costs[e.index] = get_op(e.resample).memory(ch[e.source], ch[e.target], s_shape)
        for n, name in enumerate(DAST_CELL_OPS):
            op_costs[e.index, n] = get_op(name).memory(ch[e.target], ch[e.target], t_shape,
                                                       **op_params.get(name, {}))
    return op_costs, edge_costs


def supernet_activation_bytes(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int,
                              stem_filters: int, patch: Sequence[int],
                              transformer_params: Mapping[str, Any]) -> int:
    """Bytes the supernet (:class:`.supernet.DASTSupernet`) saves for backward per sample.

    Per edge: its resampling op, the conv and transformer ops' own saved tensors, and the three
    tensors the weighted sum ``w_n * op_n(x)`` saves (``x`` for ``skip``, the conv's and the
    transformer's outputs: ``3 c S`` floats). Plus the stems and the head.
    """
    op_costs, edge_costs = op_cost_table(space, stem_filters, patch, {TRANSFORMER: transformer_params})
    ch = level_channels(stem_filters, space.D)
    layer = float(edge_costs.sum() + op_costs.sum())
    for e in space.edges:
        layer += 3 * ch[e.target] * math.prod(level_shape(patch, e.target + 1)) * BYTES
    return int(num_layers * layer + fixed_bytes(space, in_channels, out_channels, stem_filters, patch,
                                                range(space.D)))


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def op_parameters(c: int, transformer_params: Mapping[str, Any]) -> list[int]:
    """Trainable parameters of each DAST op at ``c -> c`` channels (op-logit order), counted on
    the meta device (nothing allocated)."""
    with torch.device("meta"):
        return [_parameters(get_op(name).build(c, c, **(transformer_params if name == TRANSFORMER else {})))
                for name in DAST_CELL_OPS]


def _supernet_parameters(config, in_channels: int, out_channels: int) -> int:
    from .supernet import DASTSupernet

    with torch.device("meta"):
        net = DASTSupernet(in_channels, out_channels, config.num_layers, config.num_depths,
                           config.stem_filters, transformer_params=config.transformer_params())
    return _parameters(net)


def _fixed_parameters(space: SearchSpace, in_channels: int, out_channels: int, f: int) -> int:
    """Stems, head_up and head_out of a lattice network with ``f`` full-resolution filters."""
    ch = level_channels(f, space.D)
    up_out = [f] + ch[:-1]
    total = sum(in_channels * ch[d] * 27 + 2 * ch[d] for d in range(space.D))
    total += sum(ch[d] * up_out[d] * 27 + 2 * up_out[d] for d in range(space.D))
    return total + f * f * 27 + 2 * f + f * out_channels + out_channels


def _cell_parameters_all_edges(space: SearchSpace, f: int, transformer_params, how: str) -> float:
    """Parameters of one layer with every edge on, each cell at the mean (or max) of the ops."""
    ch = level_channels(f, space.D)
    total = 0.0
    per_level = {c: op_parameters(c, transformer_params) for c in set(ch)}
    for e in space.edges:
        c = ch[e.target]
        counts = per_level[c]
        total += (sum(counts) / len(counts)) if how == "mean" else max(counts)
        if e.resample != "none":
            total += ch[e.source] * c + 2 * c  # factorized reduce / increase: 1x1x1 conv + norm
    return total


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Memory to search and to retrain with ``config`` (a :class:`.config.DASTConfig`).

    - ``search_bytes``: the supernet's saved activations at the search patch and batch, plus
      parameters, gradients and SGD momentum (fp32).
    - ``retrain_bytes``: the retrained network (``retrain_channel_multiplier`` filters) at the
      retrain patch and batch with every edge of every layer on and each cell at the mean of
      the three ops' costs (the expected op under uniform alpha), as DiNTS's estimate; plus
      parameters likewise. ``retrain_budget_bytes`` scales the cells by ``sigma``;
      ``retrain_worst_case_bytes`` puts every cell at its most expensive op.

    ``details`` carries ``search_activation_bytes`` / ``retrain_activation_bytes`` (one batch,
    fp32, the plug-in surface's memory contract) and the transformer's per-sample cost at
    each level (``transformer_bytes_by_level``).
    """
    space = get_space(config.num_depths)
    params = config.transformer_params()
    patch = list(config.patch_size)
    L, f = config.num_layers, config.stem_filters
    act = supernet_activation_bytes(space, L, in_channels, out_channels, f, patch, params)
    search_params = _supernet_parameters(config, in_channels, out_channels)
    search = act * config.batch_size + 3 * search_params * BYTES

    fr = retrain_filters(f, config.retrain_channel_multiplier)
    rpatch = list(config.retrain_patch_size)
    op_costs, edge_costs = op_cost_table(space, fr, rpatch, {TRANSFORMER: params})
    fixed = fixed_bytes(space, in_channels, out_channels, fr, rpatch, range(space.D))
    cells_mean = all_edges_cell_bytes(op_costs, edge_costs, L, "mean")
    cells_max = all_edges_cell_bytes(op_costs, edge_costs, L, "max")
    fixed_params = _fixed_parameters(space, in_channels, out_channels, fr)
    cell_params_mean = L * _cell_parameters_all_edges(space, fr, params, "mean")
    cell_params_max = L * _cell_parameters_all_edges(space, fr, params, "max")
    b = config.retrain_batch_size
    retrain_act = fixed + cells_mean
    retrain = int(retrain_act * b + 3 * (fixed_params + cell_params_mean) * BYTES)
    budget_act = fixed + config.sigma * cells_mean
    budget = int(budget_act * b + 3 * (fixed_params + config.sigma * cell_params_mean) * BYTES)
    worst = int((fixed + cells_max) * b + 3 * (fixed_params + cell_params_max) * BYTES)
    ch = level_channels(fr, space.D)
    by_level = {str(d + 1): int(get_op(TRANSFORMER).memory(ch[d], ch[d], level_shape(rpatch, d + 1), **params))
                for d in range(space.D)}
    conv_by_level = {str(d + 1): int(get_op("conv_3x3x3").memory(ch[d], ch[d], level_shape(rpatch, d + 1)))
                     for d in range(space.D)}
    details = {
        "search_activation_bytes": int(act * config.batch_size),
        "retrain_activation_bytes": int(retrain_act * b),
        "search_activation_bytes_per_sample": int(act),
        "search_parameters": int(search_params),
        "search_batch_size": int(config.batch_size),
        "retrain_stem_filters": fr,
        "retrain_activation_bytes_per_sample": int(retrain_act),
        "retrain_batch_size": int(b),
        "retrain_patch_size": rpatch,
        "retrain_budget_bytes": budget,
        "retrain_worst_case_bytes": worst,
        "patch_size": patch,
        "transformer_bytes_by_level": by_level,
        "conv_bytes_by_level": conv_by_level,
        "retrain_estimate": "every edge on, each cell at the mean of skip/conv/transformer costs",
    }
    return MemoryEstimate(search_bytes=int(search), retrain_bytes=retrain, details=details)
