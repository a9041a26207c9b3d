"""The UXNet ops pin sec. 2.1: 7 normal, 3 reduction and 2 expansion candidates, registered in the
shared registry, with shapes and memory costs exact against what autograd saves."""

import pytest
import torch

from nasengine.methods.uxnet.ops import ALIGN, EXPANSION_OPS, HEAD, NORMAL_OPS, REDUCTION_OPS, STEM, UXNET_OPS
from nasengine.ops import OPS, saved_activation_bytes

BATCH = 2


def test_candidate_counts_are_the_papers():
    assert len(NORMAL_OPS) == 7 and len(REDUCTION_OPS) == 3 and len(EXPANSION_OPS) == 2
    assert len(set(NORMAL_OPS + REDUCTION_OPS + EXPANSION_OPS)) == 12


def test_every_op_is_registered_with_its_kind():
    for name, spec in UXNET_OPS.items():
        assert OPS[name] is spec
    assert {OPS[n].kind for n in NORMAL_OPS} == {"cell"}
    assert {OPS[n].level_delta() for n in REDUCTION_OPS} == {1}
    assert {OPS[n].level_delta() for n in EXPANSION_OPS} == {-1}
    assert OPS[STEM].kind == "stem" and OPS[HEAD].kind == "head"
    assert [OPS[ALIGN].level_delta(shift=s) for s in (-2, 0, 3)] == [-2, 0, 3]


def test_normal_ops_have_the_papers_kernels():
    """3x3x3, 3x3x1, 5x5x5, P3D, two 3x3x3, 3x3x3 dilation 2, 5x5x5 dilation 2."""
    def convs(name):
        m = OPS[name].build(4, 4)
        return [(tuple(c.kernel_size), tuple(c.dilation)) for c in m.modules() if isinstance(c, torch.nn.Conv3d)]

    one = (1, 1, 1)
    assert convs("uxnet_conv_3x3x3") == [((3, 3, 3), one)]
    assert convs("uxnet_conv_3x3x1") == [((3, 3, 1), one)]
    assert convs("uxnet_conv_5x5x5") == [((5, 5, 5), one)]
    assert convs("uxnet_p3d") == [((3, 3, 1), one), ((1, 1, 3), one)]
    assert convs("uxnet_conv_3x3x3_x2") == [((3, 3, 3), one), ((3, 3, 3), one)]
    assert convs("uxnet_dil2_3x3x3") == [((3, 3, 3), (2, 2, 2))]
    assert convs("uxnet_dil2_5x5x5") == [((5, 5, 5), (2, 2, 2))]


def _cases():
    for name in NORMAL_OPS:
        yield name, {}, 4, 4, (8, 8, 8), (8, 8, 8)
    for name in REDUCTION_OPS:
        yield name, {}, 4, 8, (8, 8, 8), (4, 4, 4)
    for name in EXPANSION_OPS:
        yield name, {}, 8, 4, (4, 4, 4), (8, 8, 8)
    for shift, out in ((-2, (32, 32, 32)), (-1, (16, 16, 16)), (0, (8, 8, 8)), (1, (4, 4, 4)), (2, (2, 2, 2))):
        yield ALIGN, {"shift": shift}, 4, 6, (8, 8, 8), out
    yield STEM, {}, 2, 4, (8, 8, 8), (8, 8, 8)
    yield HEAD, {}, 4, 3, (8, 8, 8), (8, 8, 8)


@pytest.mark.parametrize("name,params,c_in,c_out,shape,out_shape", list(_cases()),
                         ids=[f"{c[0]}{c[1].get('shift', '')}" for c in _cases()])
def test_op_shape_and_memory_are_exact(name, params, c_in, c_out, shape, out_shape):
    spec = OPS[name]
    torch.manual_seed(0)
    module = spec.build(c_in, c_out, **params)
    # a feature map needs grad; the image (stem input) does not
    x = torch.randn(BATCH, c_in, *shape, requires_grad=spec.kind != "stem")
    assert tuple(module(x).shape) == (BATCH, c_out, *out_shape)
    assert spec.out_shape(shape, **params) == out_shape
    measured = saved_activation_bytes(lambda: module(x), exclude=module)
    kept_input = x.numel() * 4 if spec.saves_input else 0
    assert measured == BATCH * spec.memory(c_in, c_out, shape, **params) + kept_input


def test_flops_count_two_per_multiply_accumulate():
    s = 8**3
    assert OPS["uxnet_conv_5x5x5"].flops(4, 4, (8, 8, 8)) == 2 * 4 * 4 * 125 * s
    assert OPS["uxnet_conv_3x3x3_x2"].flops(4, 4, (8, 8, 8)) == 2 * 2 * 4 * 4 * 27 * s
    assert OPS["uxnet_conv_3x3x3_s2"].flops(4, 8, (8, 8, 8)) == 2 * 4 * 8 * 27 * s // 8
    assert OPS["uxnet_max_pool"].flops(4, 8, (8, 8, 8)) == 2 * 4 * 8 * s // 8
    assert OPS[ALIGN].flops(4, 8, (8, 8, 8), shift=1) == 2 * 4 * 8 * s // 8


def test_align_rejects_a_non_integer_shift():
    with pytest.raises(ValueError, match="shift"):
        OPS[ALIGN].build(4, 4, shift=0.5)
