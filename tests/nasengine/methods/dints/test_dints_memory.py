"""Memory estimates of search and retrain against what autograd really saves."""

import dataclasses

import numpy as np
import pytest
import torch

from nasengine.genotype import build_network, derive_figures
from nasengine.methods.dints.config import PRESETS, DiNTSConfig
from nasengine.methods.dints.memory import estimate_memory, op_cost_table, supernet_activation_bytes
from nasengine.methods.dints.model_search import DiNTSSupernet
from nasengine.lattice.space import get_space
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
    assert lo.retrain_bytes < est.retrain_bytes <= est.details["retrain_worst_case_bytes"]
    wide = estimate_memory(dataclasses.replace(tiny, retrain_channel_multiplier=4.0), 1, 3)
    assert wide.retrain_bytes > est.retrain_bytes and wide.search_bytes == est.search_bytes


def test_paper_search_memory_is_plausible():
    """Paper: one 96^3 patch per 16 GB V100 during search."""
    est = estimate_memory(DiNTSConfig(), 1, 3)
    per_gpu = est.details["search_activation_bytes_per_sample"] + 3 * 4 * est.details["search_parameters"]
    assert 2e9 < per_gpu < 16e9
