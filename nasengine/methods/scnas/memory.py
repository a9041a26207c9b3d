"""Memory of an SCNAS search (two active ops per edge) and of its retraining.

Activation figures are bytes autograd saves for backward per sample (what the op costs of
:mod:`.ops` count: each op's own tensors beyond its input, plus each tensor some reader saves,
once). Both are EXPECTATIONS over the random parts, because neither network is known before
the search:

- search: each edge runs the pair that Algorithm 1 draws; at the start alpha ~ 0, so by
  symmetry every op is in the pair with probability 2/8. The weighted sum
  ``z_hat * o(x)`` also keeps ``o(x)`` (the weight needs it for alpha's gradient). A drawn
  ``zero`` adds nothing; an identity keeps ``x`` itself (already held).
- retraining: the derived network at ``retrain_stem_channels`` with each edge's op uniform
  over the 8 (an untrained alpha's argmax; ``zero`` = no edge); a node tensor is held unless
  every reader is an identity or absent.

One draw differs from the expectation by a few per cent (tests measure it with saved-tensor
hooks). ``search_bytes`` / ``retrain_bytes`` add weights, gradients and optimiser state (Adam:
2 moments; SGD: 1 momentum) in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..base import MemoryEstimate
from .ops import PRIMITIVES, SAVES_INPUT, SAVES_INPUT_STRIDED, candidate_memory, candidate_parameters, preprocess_memory
from .space import CELL_EDGES, NUM_NODES, feature_levels, macro_plan, node_channels, preprocess_kind

__all__ = ["activation_bytes", "estimate_memory", "parameter_count"]

BYTES = 4


def _shape(patch: Sequence[int], level: int) -> tuple[int, ...]:
    return tuple(int(s) // 2 ** int(level) for s in patch)


def _edge_bytes(c: int, in_shape: tuple[int, ...], stride: int, supernet: bool) -> float:
    out = math.prod(s // stride for s in in_shape)
    total = 0.0
    for p in PRIMITIVES:
        m = candidate_memory(p, c, c, in_shape, stride)
        if supernet:
            keeps_y = p != "zero" and not (p == "identity" and stride == 1)
            total += 0.25 * (m + (c * out * BYTES if keeps_y else 0))
        else:
            total += m / len(PRIMITIVES)
    return total


def _held(readers: list[int], supernet: bool) -> float:
    """Chance that a tensor read by edges of the given strides is kept for backward."""
    if not readers:
        return 0.0
    if supernet:
        return 1.0  # every drawn pair holds a non-zero op, and each keeps its input
    free = 1.0
    for stride in readers:
        table = SAVES_INPUT_STRIDED if stride == 2 else SAVES_INPUT
        free *= sum(not v for v in table.values()) / len(PRIMITIVES)
    return 1.0 - free


def activation_bytes(in_channels: int, out_channels: int, stem_channels: int, depth: int,
                     patch: Sequence[int], *, supernet: bool) -> int:
    """Expected bytes saved per sample in one training forward of the supernet
    (``supernet=True``) or of a derived network (``False``) at ``stem_channels``."""
    F = int(stem_channels)
    levels = feature_levels(depth)
    s0 = math.prod(patch)
    total = (in_channels * s0 + F * s0 + 2 * F) * BYTES + F * s0 * BYTES  # stem, stem output
    width = {"stem": F}
    for cell in macro_plan(depth):
        c = node_channels(F, cell.level)
        sources = [(cell.prev_prev, levels[cell.prev_prev]), (cell.prev, levels[cell.prev])]
        if cell.skip is not None:  # the decoder sum: a new tensor, read by a preprocessing op
            total += width[cell.prev] * math.prod(_shape(patch, levels[cell.prev])) * BYTES
        for name, level in sources:
            total += preprocess_memory(preprocess_kind(level, cell), width[name], c, _shape(patch, level))
        in_shape = _shape(patch, cell.input_level)
        node_shape = _shape(patch, cell.level)
        reduction = cell.cell_type == "reduction"
        for k in range(2 + NUM_NODES):  # preprocessed inputs, then the 4 nodes
            shape = in_shape if k < 2 else node_shape
            readers = [2 if reduction and e.from_input else 1 for e in CELL_EDGES if e.source == k]
            total += _held(readers, supernet) * c * math.prod(shape) * BYTES
        for e in CELL_EDGES:
            stride = 2 if reduction and e.from_input else 1
            total += _edge_bytes(c, in_shape if e.from_input else node_shape, stride, supernet)
        width[cell.name] = NUM_NODES * c
        total += width[cell.name] * math.prod(node_shape) * BYTES  # the concat, read by the next cell
    last = macro_plan(depth)[-1].name
    total += width[last] * s0 * BYTES  # the out cell's LeakyReLU output
    return int(round(total))


def parameter_count(in_channels: int, out_channels: int, stem_channels: int, depth: int, *,
                    supernet: bool) -> int:
    """Parameters of the supernet (exact: counted on the meta device, alpha included), or the
    expected parameters of a derived network (each edge's op uniform over the 8)."""
    from .supernet import SCNASSupernet

    with torch.device("meta"):
        net = SCNASSupernet(in_channels, out_channels, stem_channels, depth)
    total = sum(p.numel() for p in net.parameters())
    if supernet:
        return int(total)
    total -= net.alpha.numel()
    for cell in macro_plan(depth):
        c = node_channels(stem_channels, cell.level)
        for e in CELL_EDGES:
            stride = 2 if cell.cell_type == "reduction" and e.from_input else 1
            every = sum(candidate_parameters(p, c, c, stride) for p in PRIMITIVES)
            total -= every - every / len(PRIMITIVES)
    return int(round(total))


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Memory to search and to retrain with ``config`` (an :class:`~.config.SCNASConfig`)."""
    patch = [int(s) for s in config.patch_size]
    search_act = activation_bytes(in_channels, out_channels, config.stem_channels, config.depth, patch, supernet=True)
    retrain_act = activation_bytes(in_channels, out_channels, config.retrain_stem_channels, config.depth, patch,
                                   supernet=False)
    search_params = parameter_count(in_channels, out_channels, config.stem_channels, config.depth, supernet=True)
    retrain_params = parameter_count(in_channels, out_channels, config.retrain_stem_channels, config.depth,
                                     supernet=False)
    search_copies = 4 if config.weight_optimiser == "adam" else 3  # weights, grads, optimiser state
    b, rb = int(config.batch_size), int(config.retrain_batch_size)
    search_activation = search_act * b
    retrain_activation = retrain_act * rb
    details = {
        "search_activation_bytes": int(search_activation),
        "retrain_activation_bytes": int(retrain_activation),
        "search_activation_bytes_per_sample": int(search_act),
        "retrain_activation_bytes_per_sample": int(retrain_act),
        "search_parameters": int(search_params),
        "retrain_parameters_expected": int(retrain_params),
        "search_batch_size": b,
        "retrain_batch_size": rb,
        "retrain_patch_size": patch,
        "patch_size": patch,
        "retrain_stem_channels": int(config.retrain_stem_channels),
        "search_estimate": "expected over Algorithm 1's pairs at the start (each op drawn with chance 1/4)",
        "retrain_estimate": "expected derived network (each edge's op uniform over the 8)",
    }
    return MemoryEstimate(search_bytes=int(search_activation + search_copies * search_params * BYTES),
                          retrain_bytes=int(retrain_activation + 3 * retrain_params * BYTES), details=details)
