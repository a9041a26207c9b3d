"""The DiNTS supernet: eq. 1 equivalence, fused node vs per-edge path, losses, snapshot, MONAI."""

import contextlib
import io
import json
import warnings

import pytest
import torch
import torch.nn.functional as F

from nasengine.genotype import build_network, validate
from nasengine.lattice import losses
from nasengine.lattice.supernet import MixedLatticeNode
from nasengine.methods.dints import DINTS_CELL_OPS
from nasengine.methods.dints.model_search import DiNTSSupernet

torch.manual_seed(0)


def tiny(**kw):
    args = dict(in_channels=2, out_channels=3, num_layers=2, num_depths=3, stem_filters=2)
    args.update(kw)
    net = DiNTSSupernet(**args)
    with torch.no_grad():  # break the symmetry of the initialisation
        net.edge_logits.normal_(0, 1.5)
        net.op_logits.normal_(0, 1.0)
        for m in net.modules():
            if hasattr(m, "gamma"):
                m.gamma.uniform_(0.5, 1.5)
                m.beta.normal_(0, 0.3)
    return net


def test_forward_shape_and_gradients_reach_the_architecture():
    net = tiny()
    x = torch.randn(2, 2, 16, 16, 16)
    y = net(x)
    assert y.shape == (2, 3, 16, 16, 16)
    y.square().mean().backward()
    assert net.edge_logits.grad is not None and net.edge_logits.grad.abs().sum() > 0
    assert net.op_logits.grad is not None and net.op_logits.grad.abs().sum() > 0


def test_parameter_groups_partition_the_parameters():
    net = tiny()
    arch = {id(p) for p in net.arch_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert arch == {id(net.op_logits), id(net.edge_logits)}
    assert not arch & weights
    assert arch | weights == {id(p) for p in net.parameters()}


@pytest.mark.parametrize("level,size,batch", [(1, 8, 2), (1, 8, 1), (2, 2, 1), (2, 2, 2)])
def test_fused_node_equals_per_edge_ops(level, size, batch):
    """Grouped convs + one shared norm give exactly sum_e sum_n w_en op_n(pre_e(x_e)) (also on
    2x2x2 features, where the 3x3x3 convs run per edge)."""
    net = tiny()
    node = net.layers[0][level]
    ch = net.channels
    edges = [net.space.edges[e] for e in node.edge_range]
    xs = [torch.randn(batch, ch[e.source], *([int(size * 2.0 ** (level - e.source))] * 3)) for e in edges]
    w = torch.rand(node.n, 5)
    ref = sum(node.edge_output(k, xs[k], w[k]) for k in range(node.n))
    torch.testing.assert_close(node(xs, w), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("D", [2, 3])
def test_marginal_forward_equals_eq1_over_all_patterns(D):
    """s_i = sum_j eta_j c_j(s_{i-1}), c_j = sum of the cells of the edges in pattern j (eq. 1)."""
    net = tiny(num_depths=D, num_layers=1)
    s = net.space
    x = torch.randn(2, 2, 16, 16, 16)
    feats = [stem(x) for stem in net.stems]
    alpha = F.softmax(net.op_logits, -1)[0]
    eta = net.log_eta().exp()[0]
    cells = {}
    for d, node in enumerate(net.layers[0]):
        for k, e in enumerate(node.edge_range):
            cells[e] = node.edge_output(k, feats[s.edges[e].source], alpha[e])
    direct = [0.0] * D
    for j in range(s.M):  # the literal pattern sum
        for e in range(s.E):
            if s.cp[j, e]:
                t = s.edges[e].target
                direct[t] = direct[t] + eta[j] * cells[e]
    w = net.edge_weights()[0]
    for d, node in enumerate(net.layers[0]):
        fast = node([feats[s.edges[e].source] for e in node.edge_range], w[node.edge_range.start:node.edge_range.stop])
        torch.testing.assert_close(fast, direct[d], atol=1e-4, rtol=1e-4)


def test_edge_weights_fold_marginal_and_softmax():
    net = tiny()
    w = net.edge_weights()
    marg = net.log_eta().exp() @ net.cp
    torch.testing.assert_close(w.sum(-1), marg, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w / w.sum(-1, keepdim=True), F.softmax(net.op_logits, -1), atol=1e-6, rtol=1e-5)


def test_arch_regularisers_are_weighted():
    costs = torch.rand(7, 5) * 100
    net = tiny(op_costs=costs, edge_costs=torch.rand(7), topology_weight=0.001, sigma=0.5)
    regs = net.arch_regularisers()
    assert set(regs) == {"entropy_alpha", "entropy_eta", "topology", "memory"}
    eta = net.log_eta().exp()
    raw = losses.topology_loss(eta, net.f_in, net.f_out)
    torch.testing.assert_close(regs["topology"], 0.001 * raw)
    torch.testing.assert_close(regs["entropy_alpha"], losses.entropy_alpha(net.op_logits))
    torch.testing.assert_close(regs["entropy_eta"], losses.entropy_eta(net.log_eta()))
    net.topology_weight = 0.5
    torch.testing.assert_close(net.arch_regularisers()["topology"], 0.5 * raw)
    assert "memory" not in tiny().arch_regularisers()  # no op costs: no memory loss


def test_snapshot_is_a_compact_continuous_genotype():
    net = tiny()
    snap = net.snapshot()
    validate(snap)
    assert snap["continuous"] is True
    cell = [e for e in snap["edges"] if e["source"].startswith("n") and e["target"].startswith("n")]
    assert len(cell) == net.L * net.space.E
    p = torch.sigmoid(net.edge_logits).detach().numpy()
    first = cell[0]
    assert first["weight"] == pytest.approx(float(p[0, 0]), abs=1e-3)
    assert set(first["op_weights"]) == {"skip", "conv_3x3x3", "p3d_3x3x1", "p3d_3x1x3", "p3d_1x3x3"}
    assert sum(first["op_weights"].values()) == pytest.approx(1.0, abs=5e-3)
    selected = sum(1 for e in cell if e.get("selected"))
    assert selected == int(net.decode_arrays().edges.sum())
    assert len(json.dumps(snap, separators=(",", ":"))) < 8000
    with pytest.raises(Exception):
        build_network(snap)


def test_decode_gives_retrain_channels_and_builds():
    net = tiny(genotype_stem_filters=4)
    doc = net.decode()
    validate(doc)
    assert doc["continuous"] is False
    chans = {n["id"]: n["channels"] for n in doc["nodes"]}
    assert chans["z"] == 4 and all(chans[k] == 4 * 2 ** int(k.split("_")[1]) for k in chans if k.startswith("n"))
    out = build_network(doc)(torch.randn(2, 2, 16, 16, 16))
    assert out.shape == (2, 3, 16, 16, 16)


def test_channels_last_gives_the_same_result():
    torch.manual_seed(1)
    a = tiny()
    b = tiny(channels_last=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, 16, 16, 16)
    torch.testing.assert_close(a(x), b(x), atol=1e-4, rtol=1e-4)


def _count(modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def test_paper_sized_parameter_count_vs_monai():
    """L=12, D=4, 16 filters at full resolution (MONAI: channel_mul 0.5). Cells and head are the
    same modules; only the stems differ (paper: one strided conv; MONAI adds a full-res conv)."""
    warnings.filterwarnings("ignore")
    from monai.networks.nets.dints import DiNTS, TopologySearch

    with contextlib.redirect_stdout(io.StringIO()):
        ms = TopologySearch(channel_mul=0.5, num_blocks=12, num_depths=4, use_downsample=True)
        mnet = DiNTS(ms, in_channels=1, num_classes=3, use_downsample=True)
    with torch.device("meta"):
        ours = DiNTSSupernet(1, 3, num_layers=12, num_depths=4, stem_filters=16)
    f = ms.filter_nums
    assert f[:5] == [16, 32, 64, 128, 256] and ours.channels == f[1:5]
    assert _count(ours.layers) == _count([ms.cell_tree])
    assert _count([ours.head_up, ours.head_out]) == _count([mnet.stem_up, mnet.stem_finals])
    assert ours.edge_logits.numel() + ours.op_logits.numel() == ms.log_alpha_a.numel() + ms.log_alpha_c.numel()
    ours_stems = _count([ours.stems])
    monai_stems = _count([mnet.stem_down])
    assert ours_stems == sum(27 * f[d + 1] + 2 * f[d + 1] for d in range(4))
    total_ours = sum(p.numel() for p in ours.parameters())
    total_monai = sum(p.numel() for p in mnet.parameters())
    assert total_monai - total_ours == monai_stems - ours_stems
    assert abs(total_ours / total_monai - 1) < 0.01


def _generic_twin(fused, space, level, channels):
    """The shared lattice's plain node over DINTS_CELL_OPS, holding the fused node's weights."""
    generic = MixedLatticeNode(space, level, channels, DINTS_CELL_OPS)
    c = fused.c
    with torch.no_grad():
        for k in range(fused.n):
            generic.pre[k].load_state_dict(fused.pre[k].state_dict())
            rows = slice(k * c, (k + 1) * c)
            skip, conv, *p3d = generic.ops[k]
            assert not list(skip.parameters())
            conv.conv.weight.copy_(fused.conv3[rows])
            conv.norm.weight.copy_(fused.gamma[0, k])
            conv.norm.bias.copy_(fused.beta[0, k])
            for i, op in enumerate(p3d):
                op.conv.weight.copy_(fused.p3d_a[i][rows])
                op.conv_1.weight.copy_(fused.p3d_b[i][rows])
                op.norm.weight.copy_(fused.gamma[1 + i, k])
                op.norm.bias.copy_(fused.beta[1 + i, k])
    return generic


@pytest.mark.parametrize("level", [0, 1, 2])
def test_fused_node_equals_the_generic_lattice_node(level):
    """DiNTS's fast path computes exactly what the shared lattice node computes with the
    registry's ops (so DAST's plain nodes and DiNTS's fused ones are the same model)."""
    net = tiny()
    fused = net.layers[1][level]
    generic = _generic_twin(fused, net.space, level, net.channels)
    edges = [net.space.edges[e] for e in fused.edge_range]
    xs = [torch.randn(2, net.channels[e.source], *([8 // 2 ** e.source] * 3)) for e in edges]
    w = torch.rand(fused.n, len(DINTS_CELL_OPS))
    torch.testing.assert_close(fused(xs, w), generic(xs, w), atol=1e-4, rtol=1e-4)
