"""Derivation (argmax, zero = no edge, dead nodes, an all-zero cell) to a version-2 genotype
that the shared validator accepts and both builders build into the same network."""

import numpy as np
import pytest
import torch

from nasengine.genotype import build_network as shared_build_network
from nasengine.genotype import validate
from nasengine.methods.scnas.derive import derive_cell
from nasengine.methods.scnas.genotypes import discrete_genotype
from nasengine.methods.scnas.network import build_network
from nasengine.methods.scnas.ops import PRIMITIVES, ZERO
from nasengine.methods.scnas.space import CELL_EDGES, CELL_TYPES
from nasengine.methods.scnas.supernet import SCNASSupernet

CONV = PRIMITIVES.index("conv")
SEP3 = PRIMITIVES.index("sep_dil3")


def _alpha(op=CONV):
    a = np.zeros((14, 8))
    a[:, op] = 1.0
    return a


def test_argmax_per_edge_and_zero_means_no_edge():
    a = _alpha()
    a[3, ZERO] = 2.0  # edge 3 (into n1) is zero
    a[5, SEP3] = 3.0
    d = derive_cell(a)
    assert d.argmax[3] == ZERO and d.ops[3] == ZERO and 3 not in d.kept_edges
    assert d.ops[5] == SEP3 and d.live == (True,) * 4 and not d.fallback
    assert len(d.kept_edges) == 13


def test_a_node_without_input_is_dead_and_its_outgoing_edges_are_dropped():
    a = _alpha()
    for e in CELL_EDGES:
        if e.target == 1:
            a[e.index, ZERO] = 2.0  # every edge into n1 is zero
    d = derive_cell(a)
    assert d.live == (True, False, True, True)
    from_n1 = [e.index for e in CELL_EDGES if e.source == 3]
    assert from_n1 and all(d.argmax[k] == CONV and d.ops[k] == ZERO for k in from_n1)
    assert d.num_live == 3 and not d.fallback


def test_death_propagates_through_nodes():
    a = _alpha()
    for e in CELL_EDGES:
        if e.target == 0 or (e.target == 1 and e.source != 2):
            a[e.index, ZERO] = 2.0  # n0 dead; n1 fed only by n0
    d = derive_cell(a)
    assert d.live == (False, False, True, True)


def test_a_cell_with_every_edge_zero_falls_back_to_each_nodes_best_edge():
    a = np.zeros((14, 8))
    a[:, ZERO] = 5.0
    a[4, SEP3] = 1.0  # into n1 from in0... the best non-zero entry of n1's edges
    d = derive_cell(a)
    assert d.fallback and d.live == (True,) * 4
    assert d.ops[4] == SEP3
    for j in range(4):  # exactly one edge per node
        assert sum(d.ops[e.index] != ZERO for e in CELL_EDGES if e.target == j) == 1


def test_genotype_document_validates_and_builds_like_the_shared_builder():
    torch.manual_seed(0)
    net = SCNASSupernet(1, 3, 8, 2, genotype_stem_channels=12)
    with torch.no_grad():
        net.alpha.normal_(0, 2)
    doc = net.decode()
    validate(doc)
    assert doc["version"] == 2 and doc["kind"] == "cells" and doc["method"] == "scnas"
    assert [c["name"] for c in doc["cells"]] == list(CELL_TYPES)
    assert doc["meta"]["stem_channels"] == 12 and doc["meta"]["search_stem_channels"] == 8
    assert doc["meta"]["temperature"] == pytest.approx(10.0)
    cell_nodes = [n for n in doc["nodes"] if "cell" in n]
    assert len(cell_nodes) == 9  # (red, enc) x 2, inter, (exp, dec) x 2
    ours, shared = build_network(doc), shared_build_network(doc)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in shared.parameters())
    assert sorted(p.numel() for p in ours.parameters()) == sorted(p.numel() for p in shared.parameters())
    x = torch.randn(1, 1, 16, 16, 16)
    assert ours(x).shape == shared(x).shape == (1, 3, 16, 16, 16)


def test_reduction_edges_from_the_inputs_are_stride_two():
    torch.manual_seed(1)
    net = SCNASSupernet(1, 2, 8, 1)
    doc = net.decode()
    red = next(c for c in doc["cells"] if c["name"] == "reduction")
    for e in red["edges"]:
        if e["target"] == "out":
            continue
        if e["source"].startswith("in"):
            assert e["resample"] == "down" and (e["op"].endswith("_s2"))
        else:
            assert e["resample"] == "none" and not e["op"].endswith("_s2")


def test_dead_nodes_and_a_dead_cell_give_a_valid_buildable_genotype():
    """encoder-normal: n1 dead and in0 unread; reduction: every edge zero (fallback)."""
    a = np.zeros((4, 14, 8))
    a[..., CONV] = 1.0
    for e in CELL_EDGES:
        if e.target == 1 or e.source == 0:
            a[0, e.index, ZERO] = 5.0
    a[1, :, ZERO] = 5.0
    doc = discrete_genotype(a, in_channels=1, out_channels=3, stem_channels=8, depth=2)
    validate(doc)
    enc = next(c for c in doc["cells"] if c["name"] == "encoder_normal")
    assert enc["channel_rule"]["output_multiplier"] == 3 and enc["inputs"] == 1
    assert "n1" not in {n["id"] for n in enc["nodes"]}
    assert doc["meta"]["cells"]["encoder_normal"] == {"fallback": False, "used_inputs": [False, True],
                                                       "dead_nodes": ["n1"]}
    assert doc["meta"]["cells"]["reduction"]["fallback"] is True
    # the decoder sums a 4C decoder output with a 3C encoder output: a 1x1x1 projection
    skips = {e["target"]: e["op"] for e in doc["edges"] if e.get("role") == "skip"}
    assert skips["dec1_sum"] == "scnas_pre" and skips["dec2_sum"] == "skip"  # the stem has F = 4C
    net = build_network(doc)
    x = torch.randn(2, 1, 16, 16, 16, requires_grad=True)
    y = net(x)
    y.sum().backward()
    assert y.shape == (2, 3, 16, 16, 16) and x.grad is not None
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in shared_build_network(doc).parameters())


def test_snapshot_is_a_valid_continuous_document_with_softmax_alpha():
    torch.manual_seed(2)
    net = SCNASSupernet(1, 2, 8, 1)
    snap = net.snapshot()
    validate(snap)
    assert snap["continuous"] is True
    cell = snap["cells"][0]
    edges = [e for e in cell["edges"] if e["target"] != "out"]
    assert len(edges) == 14
    alpha = net.alpha_array()[0]
    p = np.exp(alpha) / np.exp(alpha).sum(1, keepdims=True)
    for e, row in zip(edges, p):
        assert sum(e["op_weights"].values()) == pytest.approx(1.0, abs=1e-3)
        assert e["weight"] == pytest.approx(row.max(), abs=1e-4)
        assert isinstance(e["selected"], bool)
    with pytest.raises(Exception):
        build_network(snap)
