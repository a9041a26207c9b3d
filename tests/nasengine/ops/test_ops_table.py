"""The shared op vocabulary: shapes, op ordering, memory and FLOP estimates against PyTorch."""

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from nasengine.methods.dints.cell_ops import DINTS_CELL_OPS
from nasengine.ops import (
    CELL_OPS,
    OPS,
    SHARED_OPS,
    OpSpec,
    get_op,
    op_names,
    register_op,
    saved_activation_bytes,
    unregister_op,
)
from nasengine.ops.operations import P3D_KERNELS, InstanceNorm

torch.manual_seed(0)


def _cases():
    """(op, c_in, c_out, shape, params) covering every shared op (``c_in`` a tuple for multi-input ops)."""
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
        ("concat_conv_1x1x1", (4, 6), 5, (8, 6, 4), {}),
        ("concat_conv_1x1x1", (3, 3, 2), 8, (4, 4, 4), {}),
        ("concat_conv_1x1x1", (7,), 3, (4, 4, 4), {}),
    ]
    return cases


def _build_and_input(op, c_in, shape, batch, requires_grad=True):
    """The op's module and an input for it: a list of tensors for a multi-input op."""
    spec = OPS[op]
    if spec.multi_input:
        return [torch.randn(batch, c, *shape, requires_grad=requires_grad) for c in c_in]
    return torch.randn(batch, c_in, *shape, requires_grad=requires_grad)


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
    y = m(_build_and_input(op, c_in, shape, 2))
    assert y.shape == (2, c_out, *spec.out_shape(shape, **params))


@pytest.mark.parametrize("op,c_in,c_out,shape,params", _cases())
def test_memory_estimate_matches_saved_tensors(op, c_in, c_out, shape, params):
    """The estimate equals what autograd saves (the benchmark tolerates 10%; we are exact)."""
    spec = OPS[op]
    m = spec.build(c_in, c_out, **params)
    x = _build_and_input(op, c_in, shape, 3, requires_grad=(spec.kind != "stem"))  # the image needs no grad
    measured = saved_activation_bytes(lambda: m(x), exclude=m) / 3
    estimate = spec.memory(c_in, c_out, shape, **params)
    assert estimate == pytest.approx(measured, rel=0.01, abs=1)


@pytest.mark.parametrize("op,c_in,c_out,shape,params", _cases())
def test_flops_match_torch_flop_counter(op, c_in, c_out, shape, params):
    spec = OPS[op]
    m = spec.build(c_in, c_out, **params)
    x = _build_and_input(op, c_in, shape, 1, requires_grad=False)
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


def test_cases_cover_every_shared_op():
    assert {c[0] for c in _cases()} == set(SHARED_OPS)


def test_conv_1x1x1_is_relu_conv_norm_with_a_unit_kernel():
    m = OPS["conv_1x1x1"].build(4, 6)
    act, conv, norm = list(m.children())
    assert isinstance(act, nn.ReLU) and isinstance(norm, InstanceNorm)
    assert conv.kernel_size == (1, 1, 1) and conv.bias is None and (conv.in_channels, conv.out_channels) == (4, 6)
    assert OPS["conv_1x1x1"].kind == "cell" and OPS["conv_1x1x1"].arity == 1


def test_concat_conv_concatenates_its_inputs_in_order():
    spec = OPS["concat_conv_1x1x1"]
    assert spec.kind == "node" and spec.arity == 0 and spec.multi_input
    m = spec.build((2, 3), 4)
    a, b = torch.randn(1, 2, 4, 4, 4), torch.randn(1, 3, 4, 4, 4)
    torch.testing.assert_close(m([a, b]), m.block(torch.cat([a, b], 1)))
    assert not torch.allclose(m([a, b]), m.block(torch.cat([a, b], 1)[:, [3, 4, 0, 1, 2]]))


def _toy_spec(name="toy_scale", **overrides):
    fields = dict(name=name, kind="cell", build=lambda c_in, c_out, **_: nn.Identity(),
                  memory=lambda *a, **k: 0, flops=lambda *a, **k: 0, same_channels=True)
    fields.update(overrides)
    return OpSpec(**fields)


def test_register_op_adds_to_the_live_registry_and_refuses_a_different_spec():
    spec = _toy_spec("toy_registered_op")
    assert "toy_registered_op" not in OPS
    try:
        assert register_op(spec) is spec
        assert OPS["toy_registered_op"] is spec and get_op("toy_registered_op") is spec
        assert "toy_registered_op" in op_names() and "toy_registered_op" in OPS
        register_op(spec)  # the same spec again (a package imported twice) is a no-op
        other = _toy_spec("toy_registered_op", description="another")
        with pytest.raises(ValueError, match="already registered"):
            register_op(other)
        assert OPS["toy_registered_op"] is spec
        register_op(other, replace=True)
        assert OPS["toy_registered_op"] is other
        assert unregister_op("toy_registered_op") is other and "toy_registered_op" not in OPS
        assert unregister_op("toy_registered_op") is None
    finally:
        unregister_op("toy_registered_op")  # keep the registry as the other tests expect it


def test_registry_is_read_only_and_specs_are_checked():
    with pytest.raises(TypeError):
        OPS["skip"] = OPS["conv_3x3x3"]  # type: ignore[index]
    with pytest.raises(TypeError):
        register_op("skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        _toy_spec(kind="magic")
    with pytest.raises(ValueError, match="kind 'node'"):
        _toy_spec(arity=2)  # a multi-input op must be a node op
    with pytest.raises(ValueError, match="kind 'node'"):
        _toy_spec(kind="node")  # and a node op must take several inputs
    with pytest.raises(ValueError, match="arity"):
        _toy_spec(arity=-1)
