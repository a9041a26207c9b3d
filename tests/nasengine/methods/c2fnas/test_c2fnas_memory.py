"""C2FNAS memory: the op-by-op sum equals the genotype figures over the space, the ops' costs
equal what autograd saves, and the estimate (one candidate per worker) bounds every network the
search may train."""
from __future__ import annotations

import pytest
import torch

from nasengine.genotype import build_network, derive_figures
from nasengine.methods.c2fnas import METHOD
from nasengine.methods.c2fnas.genotypes import topology_genotype
from nasengine.methods.c2fnas.memory import network_activation_bytes
from nasengine.methods.c2fnas.ops import CELL_OP_NAMES, DOWN_OP, STEM_OP
from nasengine.methods.c2fnas.space import enumerate_codes
from nasengine.methods.c2fnas.supernet import SinglePathSupernet
from nasengine.ops import OPS, saved_activation_bytes


@pytest.mark.parametrize("name,c_in,c_out,shape", [
    *[(n, 6, 6, (8, 8, 8)) for n in CELL_OP_NAMES], (STEM_OP, 1, 8, (8, 8, 8)),
    (DOWN_OP, 4, 8, (8, 8, 8))])
def test_op_memory_and_flops_shapes_match_the_module(name, c_in, c_out, shape):
    spec = OPS[name]
    op = spec.build(c_in, c_out)
    x = torch.randn(2, c_in, *shape, requires_grad=name != STEM_OP)
    y = op(x)
    assert tuple(y.shape[2:]) == spec.out_shape(shape) and y.shape[1] == c_out
    measured = saved_activation_bytes(lambda: op(x), exclude=op)
    assert spec.memory(c_in, c_out, shape) * 2 == measured


def test_sum_over_ops_equals_the_figures_on_every_tenth_topology():
    ops = [CELL_OP_NAMES[i % 3] for i in range(12)]
    for code in enumerate_codes()[::92]:
        doc = topology_genotype(code, ops, in_channels=1, out_channels=3, base_channels=8)
        assert network_activation_bytes(code, ops, in_channels=1, out_channels=3, base_channels=8,
                                         patch=(32, 32, 32)) == \
            derive_figures(doc, [32, 32, 32])["memory_bytes"]


def test_estimate_bounds_every_tiny_candidate_and_supernet_path():
    config = METHOD.make_config("tiny")
    estimate = METHOD.estimate_memory(config, 1, 2)
    bound = estimate.details["search_activation_bytes"] / config.batch_size
    for code in enumerate_codes(config.num_cells, config.depth):
        for op in CELL_OP_NAMES:
            assert network_activation_bytes(code, [op] * config.num_cells, in_channels=1,
                                             out_channels=2, base_channels=config.base_channels,
                                             patch=tuple(config.patch_size)) <= bound
    assert estimate.details["coarse_space"] == 5 and estimate.details["fine_space"] == 3 ** 5
    paper = METHOD.estimate_memory(METHOD.make_config("paper"), 1, 3).details
    assert (paper["coarse_space"], paper["fine_space"]) == (924, 531_441)


def test_supernet_parameters_in_the_estimate_are_the_built_supernets():
    config = METHOD.make_config("tiny")
    details = METHOD.estimate_memory(config, 1, 2).details
    supernet = SinglePathSupernet(details["heaviest_topology_code"], in_channels=1,
                                  out_channels=2, base_channels=config.base_channels)
    assert details["supernet_parameters"] == sum(p.numel() for p in supernet.parameters())
    network = METHOD.build_supernet(config, 1, 2)
    assert details["candidate_parameters"] == sum(p.numel() for p in network.parameters())


def test_supernet_samples_a_path_per_training_forward_and_keeps_a_set_one_in_eval():
    torch.manual_seed(0)
    supernet = SinglePathSupernet((1, 2, 1, 0, 0), in_channels=1, out_channels=2,
                                  base_channels=4)
    x = torch.randn(1, 1, 16, 16, 16)
    paths = set()
    for _ in range(6):
        supernet(x)
        paths.add(tuple(supernet.path()))
    assert len(paths) > 1
    supernet.eval()
    fixed = ["c2fnas_2d"] * 5
    supernet.set_path(fixed)
    a = supernet(x)
    assert supernet.path() == fixed
    reference = build_network(topology_genotype((1, 2, 1, 0, 0), fixed, in_channels=1,
                                                out_channels=2, base_channels=4))
    assert a.shape == reference(x).shape
