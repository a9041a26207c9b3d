"""The numbers that pin the paper: 4 cell types, 4 nodes, 14 edges, 8 ops, 448 logits;
Algorithm 1's pair distribution q; two op modules per edge per step; tau schedule."""

import itertools

import pytest
import torch

from nasengine.methods.scnas.ops import PRIMITIVES, ZERO
from nasengine.methods.scnas.sampling import pair_probabilities, pair_table, sample_pairs, temperature_at
from nasengine.methods.scnas.space import CELL_EDGES, CELL_TYPES, NUM_ARCH_LOGITS, NUM_NODES, macro_plan, node_channels
from nasengine.methods.scnas.supernet import SCNASSupernet


def test_the_paper_space_sizes():
    assert CELL_TYPES == ("encoder_normal", "reduction", "decoder_normal", "expansion")
    assert NUM_NODES == 4
    assert len(CELL_EDGES) == 14 and [sum(e.target == j for e in CELL_EDGES) for j in range(4)] == [2, 3, 4, 5]
    assert PRIMITIVES == ("conv", "sep_dil2", "sep_dil3", "sep_dil4", "max_pool", "avg_pool", "identity", "zero")
    assert NUM_ARCH_LOGITS == 448
    net = SCNASSupernet(1, 2, 8, 2)
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(4, 14, 8)]
    assert sum(p.numel() for p in net.arch_parameters()) == 448


def test_macro_network_is_the_papers_u_net():
    plan = macro_plan(3)
    names = [c.name for c in plan]
    assert names == ["red1", "enc1", "red2", "enc2", "red3", "enc3", "inter",
                     "exp1", "dec1", "exp2", "dec2", "exp3", "dec3"]
    assert sum(c.name != "inter" for c in plan) == 12  # the paper's 12 searched cells
    assert plan[6].cell_type == "encoder_normal"  # the inter-cell copies encoder-normal
    assert (plan[0].prev_prev, plan[0].prev) == ("stem", "stem")  # duplicated stem output
    assert [c.level for c in plan] == [1, 1, 2, 2, 3, 3, 3, 2, 2, 1, 1, 0, 0]
    # decoder: previous output summed with the same-level encoder output
    assert [(c.name, c.prev, c.skip) for c in plan[7:]] == [
        ("exp1", "inter", "enc3"), ("dec1", "exp1", "enc2"), ("exp2", "dec1", "enc2"),
        ("dec2", "exp2", "enc1"), ("exp3", "dec2", "enc1"), ("dec3", "exp3", "stem")]
    # reductions double and expansions halve the channels: F * 2^level, 4 nodes of a quarter
    assert [node_channels(48, lv) for lv in (0, 1, 2, 3)] == [12, 24, 48, 96]
    assert node_channels(68, 0) * 4 == 68


def test_stem_width_is_configurable_and_checked():
    with pytest.raises(ValueError, match="divisible by 4"):
        node_channels(10, 0)


def _z(seed, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n, generator=g, dtype=torch.float64) * 2, 0)


def test_pair_probabilities_sum_to_one_and_match_the_formula():
    z = _z(0)
    q = pair_probabilities(z)
    assert pair_table(8).shape == (28, 2)
    assert float(q.sum()) == pytest.approx(1.0, abs=1e-12)
    for (a, b), qi in zip(pair_table(8).tolist(), q.tolist()):
        assert qi == pytest.approx((z[a] + z[b]).item() / 7)
    assert sorted(map(tuple, pair_table(8).tolist())) == list(itertools.combinations(range(8), 2))


def test_sampled_pairs_follow_q_and_the_marginals():
    """Over many draws the pair frequencies follow q and P(o in pair) = z_o + (1 - z_o)/7.

    z itself is random (the Gumbel noise), so the law checked is the one Algorithm 1 fixes
    given z: each pair's frequency must match the mean of the per-draw q, and each op's
    membership frequency the mean of z_o + (1 - z_o)/7 (within 5 standard errors).
    """
    torch.manual_seed(0)
    alpha = torch.log(_z(1)).float().expand(20000, 8).contiguous()
    sample = sample_pairs(alpha, tau=1.0)
    z = sample.z.double()
    q = pair_probabilities(z)  # per-draw q
    index = {tuple(p): k for k, p in enumerate(pair_table(8).tolist())}
    drawn = torch.tensor([index[tuple(p)] for p in sample.ops.tolist()])
    # the frequency of each pair equals the mean of its per-draw q (a law-of-large-numbers check)
    freq = torch.bincount(drawn, minlength=28).double() / len(drawn)
    expected = q.mean(0)
    se = torch.sqrt(expected * (1 - expected) / len(drawn))
    assert torch.all((freq - expected).abs() < 5 * se + 1e-4)
    # marginals: P(o in pair) = E[z_o + (1 - z_o)/7]
    member = torch.zeros(len(drawn), 8, dtype=torch.float64).scatter_(1, sample.ops, 1.0)
    marginal = member.mean(0)
    expected_marginal = (z + (1 - z) / 7).mean(0)
    se_m = torch.sqrt(expected_marginal * (1 - expected_marginal) / len(drawn))
    assert torch.all((marginal - expected_marginal).abs() < 5 * se_m)
    assert float(expected_marginal.sum()) == pytest.approx(2.0)


def test_the_drawn_weights_are_renormalised_z_and_differentiable():
    torch.manual_seed(3)
    alpha = torch.randn(14, 8, requires_grad=True)
    s = sample_pairs(alpha, tau=0.7)
    z = s.z.detach()
    picked = z.gather(1, s.ops)
    assert torch.allclose(s.weights.detach(), picked / picked.sum(1, keepdim=True))
    assert torch.allclose(s.weights.sum(1), torch.ones(14))
    dense = s.dense().detach()
    assert ((dense > 0).sum(1) == 2).all() and torch.allclose(dense.sum(1), torch.ones(14))
    s.weights[:, 0].sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_low_temperature_collapses_the_pair_to_one_op():
    """As tau -> 0 one op takes (almost) all of the pair's weight (the paper: two ops reduce to one)."""
    torch.manual_seed(0)
    alpha = torch.randn(56, 8)
    hot = sample_pairs(alpha, tau=10.0).weights.max(1).values
    cold = sample_pairs(alpha, tau=0.01).weights.max(1).values
    assert hot.mean() < 0.7 and cold.mean() > 0.99


def test_temperature_schedule():
    assert temperature_at(0, 11, 10.0, 0.1) == 10.0
    assert temperature_at(10, 11, 10.0, 0.1) == pytest.approx(0.1)
    assert temperature_at(5, 11, 10.0, 0.1) == pytest.approx(5.05)
    assert temperature_at(5, 11, 10.0, 0.1, "exponential") == pytest.approx(1.0)
    assert temperature_at(50, 11, 10.0, 0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        temperature_at(1, 11, 10.0, 0.1, "cosine")


def test_exactly_two_op_modules_run_per_edge_per_forward():
    """A forward hook on every candidate module counts the calls: exactly 2 per edge of every
    cell, and they are the drawn pair."""
    torch.manual_seed(0)
    net = SCNASSupernet(1, 2, 8, 2)
    calls: dict[tuple[str, int], list[int]] = {}
    for name, cell in net.cells.items():
        for e, ops in enumerate(cell.edges):
            for o, module in enumerate(ops):
                module.register_forward_hook(lambda m, i, out, key=(name, e), o=o: calls.setdefault(key, []).append(o))
    for _ in range(3):
        calls.clear()
        net(torch.randn(1, 1, 16, 16, 16))
        type_index = {t: i for i, t in enumerate(CELL_TYPES)}
        assert len(calls) == len(net.cells) * 14
        for (name, e), ran in calls.items():
            assert len(ran) == 2
            drawn = net.last_sample[type_index[net.cells[name].cell.cell_type]][e]
            assert tuple(sorted(ran)) == drawn


def test_eval_mode_runs_the_argmax_op_only():
    torch.manual_seed(0)
    net = SCNASSupernet(1, 2, 8, 1)
    with torch.no_grad():
        net.alpha.zero_()
        net.alpha[..., 0] = 1.0  # conv everywhere
    ran = []
    for cell in net.cells.values():
        for ops in cell.edges:
            for o, module in enumerate(ops):
                module.register_forward_hook(lambda m, i, out, o=o: ran.append(o))
    net.eval()
    net(torch.randn(1, 1, 8, 8, 8))
    assert set(ran) == {0} and len(ran) == len(net.cells) * 14


def test_zero_draws_add_nothing_and_counts_are_kept():
    torch.manual_seed(1)
    net = SCNASSupernet(1, 2, 8, 1)
    net(torch.randn(1, 1, 8, 8, 8))
    counts = net.sample_counts
    assert counts.shape == (4, 8) and int(counts.sum()) == 4 * 14 * 2
    metrics = net.on_step(0, "weights")
    assert metrics["temperature"] == 10.0
    assert sum(metrics["sampled_ops"]["reduction"].values()) == 28
    assert int(net.sample_counts.sum()) == 0
    assert ZERO == 7
