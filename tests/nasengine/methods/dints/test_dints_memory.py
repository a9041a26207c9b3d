"""Memory estimates of search and retrain against what autograd really saves."""

import dataclasses

import numpy as np
import pytest
import torch

from nasengine.genotype import build_network, derive_figures
from nasengine.lattice.decode import Decoded, decode
from nasengine.lattice.genotypes import discrete_genotype
from nasengine.lattice.space import get_space
from nasengine.methods.dints import DINTS_CELL_OPS, METHOD
from nasengine.methods.dints.config import PRESETS, DiNTSConfig
from nasengine.methods.dints.memory import estimate_memory, op_cost_table, retrain_filters, supernet_activation_bytes
from nasengine.methods.dints.model_search import DiNTSSupernet
from nasengine.ops import OPS, saved_activation_bytes


@pytest.mark.parametrize("D,L,f,patch", [(2, 2, 2, 16), (3, 2, 2, 32)])
def test_supernet_activation_estimate_matches_saved_tensors(D, L, f, patch):
    net = DiNTSSupernet(2, 3, L, D, f)
    x = torch.randn(2, 2, patch, patch, patch)
    measured = saved_activation_bytes(lambda: net(x), exclude=net) / 2
    est = supernet_activation_bytes(get_space(D), L, 2, 3, f, [patch] * 3)
    assert est == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrain_genotype_memory_matches_saved_tensors(seed):
    torch.manual_seed(seed)
    net = DiNTSSupernet(1, 3, 3, 3, 2, genotype_stem_filters=4)
    with torch.no_grad():
        net.edge_logits.normal_(0, 2)
        net.op_logits.normal_(0, 2)
    doc = net.decode()
    patch = (32, 32, 16)
    fig = derive_figures(doc, patch)
    model = build_network(doc)
    x = torch.randn(2, 1, *patch)
    measured = saved_activation_bytes(lambda: model(x), exclude=model) / 2
    assert fig["memory_bytes"] == pytest.approx(measured, rel=0.10)
    assert fig["memory_bytes"] == pytest.approx(measured, rel=0.01)  # we are in fact exact
    assert fig["parameters"] == sum(p.numel() for p in model.parameters())


def test_op_cost_table_uses_the_op_vocabulary():
    s = get_space(3)
    op_costs, edge_costs = op_cost_table(s, 4, (32, 32, 32))
    e = next(e for e in s.edges if e.resample == "down")
    ch = [8, 16, 32]
    assert edge_costs[e.index] == OPS["down"].memory(ch[e.source], ch[e.target], (32 // 2 ** (e.source + 1),) * 3)
    assert op_costs[e.index, 0] == 0  # skip
    assert op_costs[e.index, 1] == OPS["conv_3x3x3"].memory(ch[e.target], ch[e.target], (32 // 2 ** (e.target + 1),) * 3)
    same = next(e for e in s.edges if e.resample == "none")
    assert edge_costs[same.index] == 0


def test_estimate_memory_scales_sensibly():
    tiny = DiNTSConfig(**PRESETS["tiny"])
    est = estimate_memory(tiny, 1, 3)
    per_sample = est.details["search_activation_bytes_per_sample"]
    assert per_sample == supernet_activation_bytes(get_space(3), 3, 1, 3, 4, [32] * 3)
    assert est.search_bytes == per_sample * tiny.batch_size + 3 * 4 * est.details["search_parameters"]
    bigger = estimate_memory(dataclasses.replace(tiny, batch_size=4), 1, 3)
    assert bigger.search_bytes - est.search_bytes == 2 * per_sample
    lo = estimate_memory(dataclasses.replace(tiny, sigma=0.2), 1, 3)
    assert lo.details["retrain_budget_bytes"] < est.details["retrain_budget_bytes"] < est.retrain_bytes
    assert lo.retrain_bytes == est.retrain_bytes < est.details["retrain_worst_case_bytes"]
    wide = estimate_memory(dataclasses.replace(tiny, retrain_channel_multiplier=4.0), 1, 3)
    assert wide.retrain_bytes > est.retrain_bytes and wide.search_bytes == est.search_bytes


def test_paper_search_memory_is_plausible():
    """Paper: one 96^3 patch per 16 GB V100 during search."""
    est = estimate_memory(DiNTSConfig(), 1, 3)
    per_gpu = est.details["search_activation_bytes_per_sample"] + 3 * 4 * est.details["search_parameters"]
    assert 2e9 < per_gpu < 16e9


# ---- the plug-in surface's memory contract (docs/PLUGIN-SURFACE.md) ----------------------------
def test_contract_search_activation_bytes_match_saved_tensors_at_tiny():
    """details["search_activation_bytes"]: one forward of the supernet the search trains, on one
    batch of the config's batch size and patch, within 10% of what autograd saves."""
    c = METHOD.make_config("tiny")
    details = METHOD.estimate_memory(c, 1, 3).details
    torch.manual_seed(0)
    net = METHOD.build_supernet(c, 1, 3)
    x = torch.randn(c.batch_size, 1, *c.patch_size)
    measured = saved_activation_bytes(lambda: net(x), exclude=net)
    assert details["search_activation_bytes"] == pytest.approx(measured, rel=0.10)
    assert details["search_activation_bytes"] == pytest.approx(measured, rel=0.01)  # in fact exact


def _all_edges_genotype(c, op_index: int) -> dict:
    """The retrain network of ``c`` with every edge of every layer on, op ``op_index`` on each."""
    space = get_space(c.num_depths)
    L = c.num_layers
    every = space.pattern_row([1] * space.E)
    dec = Decoded(patterns=np.full(L, every), edges=np.ones((L, space.E), dtype=np.int64),
                  ops=np.full((L, space.E), op_index), nodes=np.ones((L + 1, space.D), dtype=np.int64), log_prob=0.0)
    n = len(DINTS_CELL_OPS)
    return discrete_genotype(dec, space, cell_ops=DINTS_CELL_OPS, method="dints", in_channels=1, out_channels=3,
                             stem_filters=retrain_filters(c.stem_filters, c.retrain_channel_multiplier),
                             marginals=np.ones((L, space.E)), alpha=np.full((L, space.E, n), 1 / n))


def test_contract_retrain_activation_bytes_match_saved_tensors_of_the_full_lattice():
    """details["retrain_activation_bytes"] forecasts the retrained network before the search:
    every edge on (what the decode keeps until the edge probabilities polarise), each at the mean
    op. That is the mean over the five networks with every edge on and one op everywhere,
    measured at the retrain batch and patch: within 10%."""
    c = METHOD.make_config("tiny")
    details = METHOD.estimate_memory(c, 1, 3).details
    assert details["retrain_patch_size"] == list(c.patch_size) and details["retrain_batch_size"] == c.retrain_batch_size
    x = torch.randn(c.retrain_batch_size, 1, *c.patch_size)
    measured = []
    for n in range(len(DINTS_CELL_OPS)):
        model = build_network(_all_edges_genotype(c, n))
        measured.append(saved_activation_bytes(lambda: model(x), exclude=model))
    assert details["retrain_activation_bytes"] == pytest.approx(np.mean(measured), rel=0.10)
    assert details["retrain_activation_bytes"] == pytest.approx(np.mean(measured), rel=0.02)  # in fact close


def test_decode_under_budget_after_few_arch_steps_is_the_full_lattice():
    """Why the forecast is the full lattice: eq. 10 under budget raises every p_e, and once all
    p_e exceed 1/2 the most probable feasible chain takes every edge."""
    space = get_space(3)
    rng = np.random.default_rng(0)
    b = 0.2 + rng.normal(0, 0.01, size=(3, space.E))  # a few Adam steps at arch_lr up from N(0, 0.01)
    dec = decode(b, rng.normal(size=(3, space.E, len(DINTS_CELL_OPS))), space)
    assert dec.edges.all() and dec.nodes.all()


def test_budget_forecast_is_linear_in_sigma():
    """details["retrain_budget_activation_bytes"]: stems and head plus sigma times the full
    lattice's cells (the network a converged search is driven to by eq. 10)."""
    at = {s: METHOD.estimate_memory(METHOD.make_config("tiny", {"sigma": s}), 1, 3).details
          for s in (0.0, 0.8, 1.0)}
    budget = {s: d["retrain_budget_activation_bytes"] for s, d in at.items()}
    assert budget[0.0] < budget[0.8] < budget[1.0] == at[0.8]["retrain_activation_bytes"]
    assert budget[0.8] == pytest.approx(budget[0.0] + 0.8 * (budget[1.0] - budget[0.0]), rel=1e-6)
