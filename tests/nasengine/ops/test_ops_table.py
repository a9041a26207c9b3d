"""The shared op vocabulary: shapes, op ordering, memory and FLOP estimates against PyTorch."""

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from nasengine.ops import CELL_OPS, DINTS_CELL_OPS, OPS, get_op, saved_activation_bytes
from nasengine.ops.operations import InstanceNorm, P3D_KERNELS

torch.manual_seed(0)


def _cases():
    """(op, c_in, c_out, shape, params) covering every op."""
    cases = []
    for op in CELL_OPS:
        cases.append((op, 6, 6, (8, 8, 8), {}))
        if op != "skip":
            cases.append((op, 4, 6, (8, 6, 4), {}))
    cases += [
        ("down", 4, 8, (8, 8, 8), {}),
        ("down", 3, 6, (8, 6, 4), {}),
        ("up", 8, 4, (4, 4, 4), {}),
        ("stem", 1, 8, (16, 16, 16), {"factor": 2}),
        ("stem", 2, 16, (16, 16, 16), {"factor": 4}),
        ("stem", 1, 32, (16, 16, 16), {"factor": 8}),
        ("head_up", 8, 4, (4, 4, 4), {}),
        ("head_out", 4, 3, (8, 8, 8), {}),
    ]
    return cases


def test_dints_cell_ops_are_the_paper_five_in_order():
    assert DINTS_CELL_OPS == ("skip", "conv_3x3x3", "p3d_3x3x1", "p3d_3x1x3", "p3d_1x3x3")
    assert len(DINTS_CELL_OPS) == 5
    assert set(DINTS_CELL_OPS) <= set(CELL_OPS)
    assert P3D_KERNELS["p3d_3x3x1"] == ((3, 3, 1), (1, 1, 3))
    assert P3D_KERNELS["p3d_3x1x3"] == ((3, 1, 3), (1, 3, 1))
    assert P3D_KERNELS["p3d_1x3x3"] == ((1, 3, 3), (3, 1, 1))


@pytest.mark.parametrize("op", [o for o in DINTS_CELL_OPS if o != "skip"])
def test_cell_op_order_is_relu_conv_norm(op):
    m = OPS[op].build(4, 4)
    children = list(m.children())
    assert isinstance(children[0], nn.ReLU)
    assert all(isinstance(c, nn.Conv3d) and c.bias is None for c in children[1:-1])
    assert isinstance(children[-1], InstanceNorm)
    # kernels of the convs in order
    kernels = [tuple(c.kernel_size) for c in children[1:-1]]
    assert kernels == ([(3, 3, 3)] if op == "conv_3x3x3" else list(P3D_KERNELS[op]))


def test_skip_is_identity_without_parameters():
    m = OPS["skip"].build(5, 5)
    x = torch.randn(2, 5, 4, 4, 4)
    assert m(x) is x
    assert sum(p.numel() for p in m.parameters()) == 0
    with pytest.raises(ValueError):
        OPS["skip"].build(4, 8)


def test_instance_norm_matches_torch_instance_norm():
    x = torch.randn(2, 6, 5, 6, 7) * 3 + 1
    ours, ref = InstanceNorm(6), nn.InstanceNorm3d(6, affine=True)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2)
        ours.bias.uniform_(-1, 1)
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_fast_dilation_does_not_change_the_3x1x1_conv():
    m = OPS["p3d_1x3x3"].build(4, 5)
    x = torch.randn(2, 4, 6, 6, 6)
    conv = m.conv_1
    assert conv.kernel_size == (3, 1, 1) and conv.dilation != (1, 1, 1)
    ref = nn.functional.conv3d(x, conv.weight, padding=(1, 0, 0))
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("op,c_in,c_out,shape,params", _cases())
def test_output_shape_matches_out_shape(op, c_in, c_out, shape, params):
    spec = OPS[op]
    m = spec.build(c_in, c_out, **params)
    y = m(torch.randn(2, c_in, *shape))
    assert y.shape == (2, c_out, *spec.out_shape(shape, **params))


@pytest.mark.parametrize("op,c_in,c_out,shape,params", _cases())
def test_memory_estimate_matches_saved_tensors(op, c_in, c_out, shape, params):
    """The estimate equals what autograd saves (the benchmark tolerates 10%; we are exact)."""
    spec = OPS[op]
    m = spec.build(c_in, c_out, **params)
    x = torch.randn(3, c_in, *shape, requires_grad=(spec.kind != "stem"))  # the image needs no grad
    measured = saved_activation_bytes(lambda: m(x), exclude=m) / 3
    estimate = spec.memory(c_in, c_out, shape, **params)
    assert estimate == pytest.approx(measured, rel=0.01, abs=1)


@pytest.mark.parametrize("op,c_in,c_out,shape,params", _cases())
def test_flops_match_torch_flop_counter(op, c_in, c_out, shape, params):
    spec = OPS[op]
    m = spec.build(c_in, c_out, **params)
    x = torch.randn(1, c_in, *shape)
    with FlopCounterMode(display=False) as fc:
        m(x)
    counts = fc.get_flop_counts().get("Global", {})
    convs = sum(v for k, v in counts.items() if "convolution" in str(k))
    assert spec.flops(c_in, c_out, shape, **params) == convs


def test_level_delta_and_unknown_op():
    assert OPS["down"].level_delta() == 1 and OPS["up"].level_delta() == -1
    assert OPS["stem"].level_delta(factor=8) == 3
    assert OPS["conv_3x3x3"].level_delta() == 0
    with pytest.raises(KeyError, match="known ops"):
        get_op("conv_5x5x5")


@pytest.mark.parametrize("op,c_in,c_out", [("head_out", 4, 3), ("head_up", 8, 4)])
def test_batch1_slab_path_gives_the_same_values_and_gradients(op, c_in, c_out):
    """Batch-1 CPU 3x3x3 convs on large volumes run as two halo slabs (a speed-up only)."""
    m = OPS[op].build(c_in, c_out)
    x = torch.randn(1, c_in, 16, 12, 10, requires_grad=True)
    m.block.split_batch1 = True
    y1 = m(x)
    g1 = torch.autograd.grad(y1.square().sum(), [x, m.block.conv.weight])
    m.block.split_batch1 = False
    y0 = m(x)
    g0 = torch.autograd.grad(y0.square().sum(), [x, m.block.conv.weight])
    torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g0):  # float32 sums over ~2k terms in a different order
        torch.testing.assert_close(a, b, atol=5e-3 * float(b.abs().max()), rtol=1e-3)
