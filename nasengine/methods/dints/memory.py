"""Memory of a DiNTS search and of its retraining, from the op costs of :mod:`nasengine.ops`.

All activation figures are bytes that autograd holds for backward (what the op table counts);
parameters add weights, gradients and one optimiser buffer (SGD momentum) in float32. The
lattice-generic parts (op cost tables, stems and head) live in :mod:`nasengine.lattice.costs`;
this module adds what is DiNTS's own: the fused supernet's activations and the parameter counts
of its five ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ...lattice.costs import all_edges_cell_bytes, fixed_bytes
from ...lattice.costs import op_cost_table as lattice_op_cost_table
from ...lattice.space import SearchSpace, get_space, level_channels, level_shape
from ...ops import get_op
from ..base import MemoryEstimate
from .cell_ops import DINTS_CELL_OPS

__all__ = ["op_cost_table", "supernet_activation_bytes", "layer_recompute_bytes", "estimate_memory", "retrain_filters"]

BYTES = 4


def search_recompute_mode(config) -> str:
    """The supernet's ``recompute`` mode (:data:`.model_search.RECOMPUTE_MODES`) of a config."""
    if not config.recompute_front:
        return "none"
    return "front+middle" if config.recompute_p3d_middle else "front"


def retrain_filters(stem_filters: int, multiplier: float) -> int:
    """Full-resolution filters of the retrained network."""
    return max(1, int(round(stem_filters * multiplier)))


def op_cost_table(space: SearchSpace, stem_filters: int, patch: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nasengine.lattice.costs.op_cost_table` for :data:`DINTS_CELL_OPS`:
    ``(op_costs [E, 5], edge_costs [E])`` bytes per sample."""
    return lattice_op_cost_table(space, stem_filters, patch, DINTS_CELL_OPS)


def supernet_activation_bytes(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int,
                              stem_filters: int, patch: Sequence[int], *, recompute: str = "front",
                              checkpoint_layers: bool = False) -> int:
    """Bytes the supernet (:class:`DiNTSSupernet`) saves for backward per sample.

    Per layer, its inputs (the previous layer's D feature nodes, ``c_t S_t`` floats at level t):
    every edge that reads a feature keeps the same storage (:mod:`.recompute`). Per feature node
    with n incoming edges and c channels on S voxels: the 4 op outputs under the shared
    InstanceNorm (``4 n c S``), its statistics (``8 n c``) and, unless ``recompute`` is
    ``"front+middle"``, the 3 P3D middle tensors (``3 n c S``). ``recompute="none"`` (plain
    autograd) keeps instead the resampling ops' tensors, the concatenated inputs, their ReLU,
    the middles and the op outputs: ``9 n c S`` plus the resampling. With ``checkpoint_layers``
    only the layer inputs stay between forward and backward (:func:`layer_recompute_bytes` is
    the extra one layer needs while backward reruns it). Stems and head come on top.
    """
    f = stem_filters
    ch = level_channels(f, space.D)
    fixed = fixed_bytes(space, in_channels, out_channels, f, patch, range(space.D))
    inputs = sum(ch[t] * math.prod(level_shape(patch, t + 1)) for t in range(space.D)) * BYTES
    if checkpoint_layers:
        return num_layers * inputs + fixed
    if recompute == "none":
        return num_layers * _plain_node_bytes(space, ch, patch) + fixed
    return num_layers * (inputs + layer_recompute_bytes(space, stem_filters, patch, recompute=recompute)) + fixed


def layer_recompute_bytes(space: SearchSpace, stem_filters: int, patch: Sequence[int], *,
                          recompute: str = "front") -> int:
    """Per-sample bytes one layer's feature nodes save beyond the layer inputs (see
    :func:`supernet_activation_bytes`): what a checkpointed layer holds while backward reruns it."""
    ch = level_channels(stem_filters, space.D)
    if recompute == "none":
        return _plain_node_bytes(space, ch, patch)
    per_voxel = 4 if recompute == "front+middle" else 7
    total = 0
    for t in range(space.D):
        n, c, s = len(space.edges_into(t)), ch[t], math.prod(level_shape(patch, t + 1))
        total += (per_voxel * n * c * s + 8 * n * c) * BYTES
    return total


def _plain_node_bytes(space: SearchSpace, ch: Sequence[int], patch: Sequence[int]) -> int:
    """One layer in plain autograd (``recompute="none"``, the node before issue 15)."""
    layer = 0
    for t in range(space.D):
        rng = space.edges_into(t)
        n, c, s = len(rng), ch[t], math.prod(level_shape(patch, t + 1))
        layer += (9 * n * c * s + 8 * n * c) * BYTES
        for e in rng:
            edge = space.edges[e]
            if edge.resample != "none":
                layer += get_op(edge.resample).memory(ch[edge.source], c, level_shape(patch, edge.source + 1))
    return layer


def _supernet_parameters(space: SearchSpace, num_layers: int, in_channels: int, out_channels: int, f: int) -> int:
    ch = level_channels(f, space.D)
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
    ch = level_channels(f, space.D)
    total = 0.0
    for e in space.edges:
        c = ch[e.target]
        total += (63 * c * c + 8 * c) / 5 if how == "mean" else 27 * c * c + 2 * c
        if e.resample != "none":
            total += ch[e.source] * c + 2 * c
    return total


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Memory to search and to retrain with ``config`` (a :class:`DiNTSConfig`).

    - ``search_bytes``: the supernet's saved activations at the search patch and batch (what
      :func:`supernet_activation_bytes` counts for the config's ``recompute_p3d_middle`` and
      ``activation_checkpointing``; with checkpointing, plus the one layer backward reruns at a
      time, ``details["search_rerun_bytes_per_sample"]``), plus parameters, gradients and SGD
      momentum (float32).
    - ``retrain_bytes``: the discrete network at the retrain channels, patch and batch with
      every edge of every layer on and each cell at the mean of the op costs (the expected op
      under uniform alpha), plus weights, gradients and momentum likewise. Every edge, because
      the most probable pattern of a layer (eqs. 2-4) holds exactly the edges whose ``p_e`` is
      above 1/2 (up to feasibility), while the memory loss (eq. 10) bounds only the expectation
      ``M_e``: a search under budget pushes every ``p_e`` up, and until the entropy losses have
      polarised them (not within the ``tiny`` preset's few architecture steps, the case the
      contract suite measures) the decode is the full lattice. The conservative forecast,
      as a memory budget check needs.
    - ``details["retrain_budget_bytes"]``: the network once the search meets its budget: stems
      and head plus ``sigma`` times the cells above (what eq. 10 drives a converged search to).
    - ``details["retrain_worst_case_bytes"]``: every edge on, each at its most expensive op.
    - ``details["search_activation_bytes"]`` / ``["retrain_activation_bytes"]``: the activation
      parts of ``search_bytes`` / ``retrain_bytes`` (one batch, fp32), as the plug-in surface's
      memory contract names them. Once a genotype exists, ``derive_figures`` gives its exact
      figure.
    """
    space = get_space(config.num_depths)
    patch = list(config.patch_size)
    L = config.num_layers
    f = config.stem_filters
    recompute = search_recompute_mode(config)
    act = supernet_activation_bytes(space, L, in_channels, out_channels, f, patch, recompute=recompute,
                                    checkpoint_layers=config.activation_checkpointing)
    # a checkpointed layer holds its own activations again while backward reruns it
    rerun = layer_recompute_bytes(space, f, patch, recompute=recompute) if config.activation_checkpointing else 0
    params = _supernet_parameters(space, L, in_channels, out_channels, f)
    search = (act + rerun) * config.batch_size + 3 * params * BYTES

    fr = retrain_filters(f, config.retrain_channel_multiplier)
    op_costs, edge_costs = op_cost_table(space, fr, patch)
    fixed = fixed_bytes(space, in_channels, out_channels, fr, patch, range(space.D))
    cells_all_mean = all_edges_cell_bytes(op_costs, edge_costs, L, "mean")
    cells_all_max = all_edges_cell_bytes(op_costs, edge_costs, L, "max")
    fixed_params = _supernet_parameters(space, 0, in_channels, out_channels, fr)
    cell_params_mean = L * _cell_parameters(space, fr, "mean")
    cell_params_max = L * _cell_parameters(space, fr, "max")
    b = config.retrain_batch_size
    retrain_act = fixed + cells_all_mean
    retrain = int(retrain_act * b + 3 * (fixed_params + cell_params_mean) * BYTES)
    budget_act = fixed + config.sigma * cells_all_mean
    budget = int(budget_act * b + 3 * (fixed_params + config.sigma * cell_params_mean) * BYTES)
    worst = int((fixed + cells_all_max) * b + 3 * (fixed_params + cell_params_max) * BYTES)
    details = {
        # the plug-in surface's memory contract: one forward, one batch, fp32
        "search_activation_bytes": int(act * config.batch_size),
        "retrain_activation_bytes": int(retrain_act * b),
        "search_activation_bytes_per_sample": int(act),
        "search_rerun_bytes_per_sample": int(rerun),
        "search_recompute": recompute,
        "search_activation_checkpointing": bool(config.activation_checkpointing),
        "search_parameters": int(params),
        "search_batch_size": int(config.batch_size),
        "retrain_stem_filters": fr,
        "retrain_activation_bytes_per_sample": int(retrain_act),
        "retrain_batch_size": int(b),
        "retrain_patch_size": patch,
        "retrain_budget_bytes": budget,
        "retrain_budget_activation_bytes": int(budget_act * b),
        "retrain_worst_case_bytes": worst,
        "patch_size": patch,
        "retrain_estimate": "every edge on, each cell at the mean op cost (the decode before the edges polarise)",
    }
    return MemoryEstimate(search_bytes=int(search), retrain_bytes=retrain, details=details)
