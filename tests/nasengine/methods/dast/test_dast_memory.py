"""DAST's memory: the op cost table by level, the memory term in the budget loss, and the
estimate's search / retrain activation bytes against autograd's saved tensors (±10%)."""

import numpy as np
import pytest
import torch

from nasengine.genotype import derive_figures
from nasengine.lattice.space import get_space, level_channels, level_shape
from nasengine.methods.dast import METHOD, TRANSFORMER
from nasengine.methods.dast.memory import op_cost_table
from nasengine.ops import get_op, saved_activation_bytes

TOLERANCE = 0.10


def measured(network, in_channels, batch, patch):
    torch.manual_seed(0)
    network.train()
    x = torch.randn(batch, in_channels, *patch)
    return saved_activation_bytes(lambda: network(x), exclude=network)


def test_cost_table_prices_each_op_at_its_level_with_the_transformer_parameters():
    config = METHOD.make_config("tiny")
    space = get_space(config.num_depths)
    params = config.transformer_params()
    op_costs, edge_costs = op_cost_table(space, 8, [32, 32, 32], {TRANSFORMER: params})
    ch = level_channels(8, space.D)
    for e in space.edges:
        shape = level_shape([32] * 3, e.target + 1)
        assert op_costs[e.index, 0] == 0  # skip
        assert op_costs[e.index, 1] == get_op("conv_3x3x3").memory(ch[e.target], ch[e.target], shape)
        assert op_costs[e.index, 2] == get_op(TRANSFORMER).memory(ch[e.target], ch[e.target], shape, **params)
        assert (edge_costs[e.index] > 0) == (e.resample != "none")


def test_memory_term_is_in_the_budget_loss_and_follows_sigma():
    config = METHOD.make_config("tiny")
    torch.manual_seed(0)
    loose = METHOD.build_supernet(config, 1, 3)
    tight = METHOD.build_supernet(METHOD.make_config("tiny", {"sigma": 0.2}), 1, 3)
    tight.load_state_dict(loose.state_dict())
    ratio = loose.memory_ratio()
    assert 0 < ratio < 1
    assert float(loose.arch_regularisers()["memory"].detach()) == pytest.approx(abs(ratio - 0.8), abs=1e-5)
    assert float(tight.arch_regularisers()["memory"].detach()) == pytest.approx(abs(ratio - 0.2), abs=1e-5)


def test_memory_term_gradient_reaches_the_transformer_logits():
    net = METHOD.build_supernet(METHOD.make_config("tiny", {"sigma": 0.0}), 1, 3)
    net.arch_regularisers()["memory"].backward()
    assert net.op_logits.grad is not None and float(net.op_logits.grad[..., 2].abs().sum()) > 0


def test_search_activation_estimate_matches_saved_tensors():
    config = METHOD.make_config("tiny")
    estimate = METHOD.estimate_memory(config, 1, 3)
    net = METHOD.build_supernet(config, 1, 3)
    got = measured(net, 1, config.batch_size, config.patch_size)
    assert estimate.details["search_activation_bytes"] == pytest.approx(got, rel=TOLERANCE)
    assert estimate.search_bytes > estimate.details["search_activation_bytes"]


def test_genotype_memory_figure_matches_saved_tensors_for_a_transformer_heavy_network():
    config = METHOD.make_config("tiny")
    torch.manual_seed(1)
    net = METHOD.build_supernet(config, 1, 3)
    with torch.no_grad():
        net.op_logits[..., 2] = 5.0  # every selected edge a transformer
    doc = net.decode()
    figures = derive_figures(doc, [32, 32, 32])
    got = measured(METHOD.build_network(doc), 1, 2, [32, 32, 32]) / 2
    assert figures["memory_bytes"] == pytest.approx(got, rel=TOLERANCE)
    assert doc["derived"]["memory_bytes"] == figures["memory_bytes"]


def test_retrain_activation_estimate_matches_the_searched_network(tiny_search):
    _, genotype, _ = tiny_search
    config = METHOD.make_config("tiny")
    estimate = METHOD.estimate_memory(config, genotype["in_channels"], genotype["out_channels"])
    got = measured(METHOD.build_network(genotype), genotype["in_channels"],
                   estimate.details["retrain_batch_size"], estimate.details["retrain_patch_size"])
    assert estimate.details["retrain_activation_bytes"] == pytest.approx(got, rel=TOLERANCE)


def test_paper_estimate_reports_the_transformer_cost_by_level():
    estimate = METHOD.estimate_memory(METHOD.make_config("paper"), 1, 3)
    by_level = estimate.details["transformer_bytes_by_level"]
    conv = estimate.details["conv_bytes_by_level"]
    assert list(by_level) == ["1", "2", "3", "4"]
    # about 42 T G floats per sample (eq. 3 read by shapes: N ~ 42 instead of 15)
    assert np.isclose(by_level["1"] / (4 * 512 * 4096), 42, atol=1.5)
    # dearer than a conv at every level, and relatively more so the coarser the level
    ratios = [by_level[k] / conv[k] for k in by_level]
    assert all(r > 1 for r in ratios) and ratios == sorted(ratios)
