"""The generic lattice supernet over an arbitrary registered op list (what DAST reuses): forward,
gradients, eq. 1 through edge marginals, regularisers with registry costs, decode and snapshot."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nasengine.genotype import build_network, validate
from nasengine.lattice import losses
from nasengine.lattice.costs import op_cost_table, plain_supernet_activation_bytes
from nasengine.lattice.supernet import LatticeSupernet, MixedLatticeNode
from nasengine.ops import saved_activation_bytes

THREE_OPS = ("skip", "conv_3x3x3", "p3d_1x3x3")


def tiny(**kw) -> LatticeSupernet:
    args = dict(in_channels=2, out_channels=3, num_layers=2, num_depths=3, stem_filters=2,
                cell_ops=THREE_OPS, method="lattice-test")
    args.update(kw)
    torch.manual_seed(0)
    net = LatticeSupernet(**args)
    with torch.no_grad():  # break the symmetry of the initialisation
        net.edge_logits.normal_(0, 1.5)
        net.op_logits.normal_(0, 1.0)
    return net


def test_shapes_follow_the_op_list():
    net = tiny()
    assert net.N == 3 and tuple(net.op_logits.shape) == (2, net.space.E, 3)
    assert tuple(net.edge_logits.shape) == (2, net.space.E)
    assert all(isinstance(node, MixedLatticeNode) for layer in net.layers for node in layer)
    assert all(len(ops) == 3 for layer in net.layers for node in layer for ops in node.ops)


def test_forward_shape_and_gradients_reach_the_architecture():
    net = tiny()
    y = net(torch.randn(2, 2, 16, 16, 16))
    assert y.shape == (2, 3, 16, 16, 16)
    y.square().mean().backward()
    assert net.edge_logits.grad.abs().sum() > 0 and net.op_logits.grad.abs().sum() > 0
    arch = {id(p) for p in net.arch_parameters()}
    assert arch == {id(net.op_logits), id(net.edge_logits)}
    assert not arch & {id(p) for p in net.weight_parameters()}


def test_node_is_the_weighted_sum_of_every_op_on_every_edge():
    """sum_e sum_n w_en op_n(pre_e(x_e)), with the registry's ops and resampling."""
    net = tiny()
    node = net.layers[0][1]  # level 1: edges from levels 0 (down), 1, 2 (up)
    ch = net.channels
    xs = [torch.randn(1, ch[net.space.edges[e].source], *([16 // 2 ** net.space.edges[e].source] * 3))
          for e in node.edge_range]
    w = torch.rand(node.n, 3)
    expected = 0
    for k in range(node.n):
        x = node.pre[k](xs[k])
        expected = expected + sum(w[k, n] * node.ops[k][n](x) for n in range(3))
    torch.testing.assert_close(node(xs, w), expected)


def test_regularisers_with_registry_costs():
    net = tiny()
    op_costs, edge_costs = op_cost_table(net.space, 2, [16] * 3, THREE_OPS)
    costed = tiny(op_costs=op_costs, edge_costs=edge_costs, sigma=0.5, topology_weight=0.01)
    regs = costed.arch_regularisers()
    assert set(regs) == {"entropy_alpha", "entropy_eta", "topology", "memory"}
    eta = costed.log_eta().exp()
    torch.testing.assert_close(regs["topology"], 0.01 * losses.topology_loss(eta, costed.f_in, costed.f_out))
    expected_memory = losses.memory_loss(losses.edge_marginals(costed.edge_logits), F.softmax(costed.op_logits, -1),
                                         torch.as_tensor(op_costs, dtype=torch.float32),
                                         torch.as_tensor(edge_costs, dtype=torch.float32), 0.5)
    torch.testing.assert_close(regs["memory"], expected_memory)
    assert "memory" not in net.arch_regularisers()  # no costs: no eq. 10


def test_cost_tables_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="op_costs"):
        tiny(op_costs=np.ones((3, 5)), edge_costs=np.ones(3))


def test_decode_and_snapshot_name_the_given_ops_and_method():
    net = tiny(genotype_stem_filters=4, genotype_patch_size=[16, 16, 16])
    doc = net.decode()
    validate(doc)
    assert doc["method"] == "lattice-test" and doc["meta"]["cell_ops"] == list(THREE_OPS)
    assert doc["derived"]["patch_size"] == [16, 16, 16]
    cell = [e for e in doc["edges"] if e["source"].startswith("n") and e["target"].startswith("n")]
    assert cell and all(e["op"] in THREE_OPS and set(e["op_weights"]) == set(THREE_OPS) for e in cell)
    assert build_network(doc)(torch.randn(1, 2, 16, 16, 16)).shape == (1, 3, 16, 16, 16)
    snap = net.snapshot()
    validate(snap)
    snap_cell = [e for e in snap["edges"] if e["source"].startswith("n") and e["target"].startswith("n")]
    assert len(snap_cell) == net.L * net.space.E
    # every candidate edge says whether the current decode keeps it (false: drawn "off")
    assert all(isinstance(e["selected"], bool) for e in snap_cell)
    assert sum(e["selected"] for e in snap_cell) == int(net.decode_arrays().edges.sum()) == len(cell)


@pytest.mark.parametrize("D,L,f,patch", [(2, 2, 2, 16), (3, 2, 2, 32)])
def test_plain_supernet_activation_estimate_matches_saved_tensors(D, L, f, patch):
    """What a lattice method without a fused node (DAST) reports as search_activation_bytes."""
    net = tiny(num_depths=D, num_layers=L, stem_filters=f)
    x = torch.randn(2, 2, patch, patch, patch)
    measured = saved_activation_bytes(lambda: net(x), exclude=net) / 2
    estimate = plain_supernet_activation_bytes(net.space, L, 2, 3, f, [patch] * 3, THREE_OPS)
    assert estimate == pytest.approx(measured, rel=0.01)
