"""Memory: every op's cost, the derived network's figures (exact) and the search / retrain
estimates (within 10%) against the bytes autograd saves, measured with saved-tensor hooks."""

import numpy as np
import pytest
import torch

from nasengine.genotype import derive_figures
from nasengine.methods.scnas import METHOD
from nasengine.methods.scnas.network import build_network
from nasengine.methods.scnas.ops import (
    PRIMITIVES,
    SAVES_INPUT,
    SAVES_INPUT_STRIDED,
    build_candidate,
    candidate_flops,
    candidate_memory,
    op_name,
)
from nasengine.methods.scnas.supernet import SCNASSupernet
from nasengine.ops import OPS, get_op, saved_activation_bytes


def _measure(module, c, shape, batch=2):
    x = torch.randn(batch, c, *shape, requires_grad=True)
    h = x * 1.0  # a non-leaf input, like a node's tensor
    return saved_activation_bytes(lambda: module(h), exclude=module) / batch


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_candidate_memory_is_exact(primitive, stride):
    c, shape = 4, (8, 8, 6)
    module = build_candidate(primitive, c, c, stride)
    held_input = (SAVES_INPUT_STRIDED if stride == 2 else SAVES_INPUT)[primitive]
    expected = candidate_memory(primitive, c, c, shape, stride) + (c * 8 * 8 * 6 * 4 if held_input else 0)
    assert _measure(module, c, shape) == expected


@pytest.mark.parametrize("name", ["scnas_pre", "scnas_pre_down", "scnas_pre_up", "scnas_out"])
def test_macro_op_memory_is_exact_beyond_the_input(name):
    spec = get_op(name)
    module = spec.build(4, 6)
    assert _measure(module, 4, (8, 8, 8)) == spec.memory(4, 6, (8, 8, 8)) + 4 * 512 * 4


def test_ops_are_registered_with_their_costs():
    for p in PRIMITIVES:
        for stride in (1, 2):
            spec = OPS[op_name(p, stride)]
            assert spec.memory(4, 4, (8, 8, 8)) == candidate_memory(p, 4, 4, (8, 8, 8), stride) or p == "identity" and stride == 1
            assert spec.flops(4, 4, (8, 8, 8)) == candidate_flops(p, 4, 4, (8, 8, 8), stride) or p == "identity" and stride == 1
    assert OPS["scnas_conv_3x3x3_s2"].kind == "resample" and OPS["scnas_conv_3x3x3_s2"].level_delta() == 1
    assert OPS["scnas_sep_dil4_3x3x3"].flops(4, 8, (2, 2, 2)) == 2 * 8 * (4 * 27 + 4 * 8)
    assert OPS["skip"].build(4, 4)(torch.ones(1, 4, 2, 2, 2)).sum() == 32  # the identity is the shared skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_genotype_figures_are_exact_for_scnas_networks(seed):
    torch.manual_seed(seed)
    net = SCNASSupernet(1, 3, 8, 2)
    with torch.no_grad():
        net.alpha.normal_(0, 2)
    doc = net.decode()
    model = build_network(doc)
    fig = derive_figures(doc, (16, 16, 16))
    measured = saved_activation_bytes(lambda: model(torch.randn(2, 1, 16, 16, 16)), exclude=model) / 2
    assert fig["memory_bytes"] == measured
    assert fig["parameters"] == sum(p.numel() for p in model.parameters())


def test_figures_are_exact_with_dead_nodes_and_unread_inputs():
    from nasengine.methods.scnas.genotypes import discrete_genotype
    from nasengine.methods.scnas.space import CELL_EDGES

    a = np.zeros((4, 14, 8))
    a[..., 0] = 1.0
    for e in CELL_EDGES:
        if e.target == 1 or e.source == 0:
            a[0, e.index, 7] = 5.0  # encoder-normal: n1 dead, in0 unread
    a[1, :, 7] = 5.0  # reduction: every edge zero (fallback)
    doc = discrete_genotype(a, in_channels=1, out_channels=3, stem_channels=8, depth=2)
    model = build_network(doc)
    measured = saved_activation_bytes(lambda: model(torch.randn(2, 1, 16, 16, 16)), exclude=model) / 2
    assert derive_figures(doc, (16, 16, 16))["memory_bytes"] == measured


def test_search_estimate_is_within_ten_percent_of_saved_tensors():
    """The tiny preset's supernet: each draw within 10% of the estimate, their mean within 3%."""
    config = METHOD.make_config("tiny")
    est = METHOD.estimate_memory(config, 1, 3).details["search_activation_bytes"]
    patch = config.patch_size
    ratios = []
    for seed in range(3):
        net = METHOD.build_supernet(config, 1, 3).train()
        torch.manual_seed(seed)
        x = torch.randn(config.batch_size, 1, *patch)
        ratios.append(saved_activation_bytes(lambda: net(x), exclude=net) / est)
    assert all(0.9 < r < 1.1 for r in ratios), ratios
    assert abs(np.mean(ratios) - 1) < 0.05, ratios


def test_retrain_estimate_is_within_ten_percent_of_derived_networks():
    config = METHOD.make_config("tiny")
    estimate = METHOD.estimate_memory(config, 1, 3)
    est = estimate.details["retrain_activation_bytes"]
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        doc = METHOD.build_supernet(config, 1, 3).decode()  # an untrained alpha's argmax
        model = build_network(doc)
        x = torch.randn(estimate.details["retrain_batch_size"], 1, *estimate.details["retrain_patch_size"])
        ratios.append(saved_activation_bytes(lambda: model(x), exclude=model) / est)
    assert all(0.9 < r < 1.1 for r in ratios), ratios


def test_estimate_parts_and_scaling():
    tiny = METHOD.make_config("tiny")
    est = METHOD.estimate_memory(tiny, 1, 3)
    d = est.details
    assert d["search_activation_bytes"] == 2 * d["search_activation_bytes_per_sample"]
    assert est.search_bytes == d["search_activation_bytes"] + 4 * 4 * d["search_parameters"]  # Adam
    net = METHOD.build_supernet(tiny, 1, 3)
    assert d["search_parameters"] == sum(p.numel() for p in net.parameters())
    bigger = METHOD.estimate_memory(METHOD.make_config("tiny", {"batch_size": 4}), 1, 3)
    assert bigger.details["search_activation_bytes"] == 2 * d["search_activation_bytes"]
    wide = METHOD.estimate_memory(METHOD.make_config("tiny", {"retrain_stem_channels": 16}), 1, 3)
    assert wide.retrain_bytes > est.retrain_bytes and wide.search_bytes == est.search_bytes


def test_paper_search_fits_the_papers_gpus_only_at_batch_one():
    """Paper: stem 48 was chosen to fit a batch of 1 (128^3) per GPU (V100, 16 or 32 GB)."""
    est = METHOD.estimate_memory(METHOD.make_config("paper"), 4, 4)
    per_gpu = est.details["search_activation_bytes_per_sample"] + 4 * 4 * est.details["search_parameters"]
    assert 4e9 < per_gpu < 40e9


def test_pair_sampling_saves_at_most_035_of_mixing_every_op():
    """The benchmark's target on a small configuration: Algorithm 1 keeps at most 0.35x the
    activations of the same supernet mixing all 8 ops (DARTS), which runs every op module."""
    x = torch.randn(1, 1, 16, 16, 16)
    saved = {}
    for mixing in ("pair", "all"):
        torch.manual_seed(0)
        net = SCNASSupernet(1, 3, 8, 2, mixing=mixing).train()
        calls = []
        for cell in net.cells.values():
            for ops in cell.edges:
                for module in ops:
                    module.register_forward_hook(lambda *_: calls.append(1))
        torch.manual_seed(1)
        saved[mixing] = saved_activation_bytes(lambda: net(x), exclude=net)
        assert len(calls) == len(net.cells) * 14 * (2 if mixing == "pair" else 8)
    assert saved["pair"] <= 0.35 * saved["all"], saved
