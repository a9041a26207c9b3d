"""Memory of C2FNAS networks, summed op by op from the registered ops' costs (exactly what
``derive_figures`` gives, without resolving a document: the whole coarse space in milliseconds).

The budget check covers one candidate per worker: the search figure is the heaviest network the
search may train (over every topology of the space, with the heaviest op, P3D, in every cell:
a path the fine stage's supernet can sample), plus the supernet's weights; the retraining figure
is that same network at the retraining batch (the searched network is not known beforehand, so
this is an upper bound).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from nasengine.ops import OPS

from ..base import MemoryEstimate
from .genotypes import topology_genotype
from .ops import CELL_OP_NAMES, CORE_KERNELS, DOWN_OP, STEM_OP
from .space import STEM, cell_inputs, enumerate_codes

__all__ = ["network_activation_bytes", "heaviest_code", "estimate_memory", "HEAVIEST_OP",
           "parameter_count", "cell_op_parameters", "heaviest_genotype"]

BYTES = 4
#: The cell op saving the most (its middle tensor): P3D.
HEAVIEST_OP = "c2fnas_p3d"
#: Bytes per parameter while training with SGD + momentum: weight, gradient, momentum buffer.
TRAINING_BYTES_PER_PARAMETER = 3 * BYTES


def _shape(patch: Sequence[int], level: int) -> tuple[int, ...]:
    return tuple(int(s) // 2 ** level for s in patch)


def network_activation_bytes(code: Sequence[int], ops: Sequence[str], *, in_channels: int,
                             out_channels: int, base_channels: int, patch: Sequence[int]) -> int:
    """Bytes autograd saves per sample in one forward of the network of ``code`` / ``ops``."""
    channels = {STEM: base_channels, **{i: base_channels * 2 ** c for i, c in enumerate(code)}}
    level = {STEM: 1, **{i: c + 1 for i, c in enumerate(code)}}
    total = OPS[STEM_OP].memory(in_channels, base_channels, tuple(patch))
    for i, inputs in enumerate(cell_inputs(code)):
        prev_op = {"same": "conv_1x1x1", "down": DOWN_OP, "up": "up"}[inputs.kind]
        src = inputs.previous
        total += OPS[prev_op].memory(channels[src], channels[i], _shape(patch, level[src]))
        if inputs.second is not None:
            total += OPS["conv_1x1x1"].memory(channels[inputs.second], channels[i],
                                              _shape(patch, level[i]))
        total += OPS[ops[i]].memory(channels[i], channels[i], _shape(patch, level[i]))
    last = len(code) - 1
    total += OPS["head_up"].memory(channels[last], base_channels // 2, _shape(patch, 1))
    total += OPS["head_out"].memory(base_channels // 2, out_channels, _shape(patch, 0))
    return int(total)


@functools.lru_cache(maxsize=64)
def heaviest_code(num_cells: int, depth: int, base_channels: int, patch: tuple[int, ...],
                  in_channels: int, out_channels: int) -> tuple[int, ...]:
    """The topology whose all-P3D network saves the most bytes (first of equals)."""
    ops = [HEAVIEST_OP] * num_cells
    return max(enumerate_codes(num_cells, depth), key=lambda c: network_activation_bytes(
        c, ops, in_channels=in_channels, out_channels=out_channels, base_channels=base_channels,
        patch=patch))


def cell_op_parameters(name: str, channels: int) -> int:
    """Parameters of one cell op at ``channels`` (core convs, two affine norms, 1x1x1 conv)."""
    core = sum(channels * channels * math.prod(k) for k in CORE_KERNELS[name])
    return core + 2 * channels + channels * channels + 2 * channels


def parameter_count(doc: dict) -> int:
    from nasengine.genotype import derive_figures

    return int(derive_figures(doc, [2 ** (max(doc["meta"]["topology_code"]) + 1)] * 3)["parameters"])


def heaviest_genotype(config, in_channels: int, out_channels: int) -> dict:
    """The genotype of the heaviest network the search may train (see the module docstring)."""
    code = heaviest_code(config.num_cells, config.depth, config.base_channels,
                         tuple(config.patch_size), in_channels, out_channels)
    return topology_genotype(code, [HEAVIEST_OP] * config.num_cells, in_channels=in_channels,
                             out_channels=out_channels, base_channels=config.base_channels,
                             meta={"note": "heaviest network of the search space (memory bound)"})


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Bytes to train one candidate (the budget check is per worker) and to retrain."""
    doc = heaviest_genotype(config, in_channels, out_channels)
    code, patch = doc["meta"]["topology_code"], tuple(config.patch_size)
    per_sample = network_activation_bytes(code, doc["meta"]["cell_ops"], in_channels=in_channels,
                                          out_channels=out_channels,
                                          base_channels=config.base_channels, patch=patch)
    candidate_parameters = parameter_count(doc)
    # the supernet holds the weights of all three ops in every cell
    cell_channels = [config.base_channels * 2 ** c for c in code]
    supernet_parameters = candidate_parameters + sum(
        cell_op_parameters(op, c) for c in cell_channels for op in CELL_OP_NAMES
        if op != HEAVIEST_OP)
    search_activations = per_sample * config.batch_size
    retrain_activations = per_sample * config.retrain_batch_size
    weights = max(candidate_parameters, supernet_parameters) * TRAINING_BYTES_PER_PARAMETER
    return MemoryEstimate(
        search_bytes=int(search_activations + weights),
        retrain_bytes=int(retrain_activations + candidate_parameters * TRAINING_BYTES_PER_PARAMETER),
        details={
            "search_activation_bytes": int(search_activations),
            "retrain_activation_bytes": int(retrain_activations),
            "retrain_batch_size": int(config.retrain_batch_size),
            "retrain_patch_size": list(patch),
            "candidate_parameters": candidate_parameters,
            "supernet_parameters": supernet_parameters,
            "heaviest_topology_code": list(code),
            "per_worker": "one candidate (or the supernet) per gpu worker",
            "coarse_space": math.comb(config.num_cells, 2 * config.depth),
            "fine_space": len(CELL_OP_NAMES) ** config.num_cells,
        })
