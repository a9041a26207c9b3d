"""The transformer op: shape contract on odd sizes, attention shape (tokens x grid), eq. 2's
position map, exact memory against autograd's saved bytes and FLOPs against the counter."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasengine.methods.dast.ops import TRANSFORMER, TRANSFORMER_DEFAULTS, transformer_flops, transformer_memory
from nasengine.methods.dast.transformer import TransformerOp, position_map
from nasengine.ops import get_op, saved_activation_bytes

SMALL = {"tokens": 8, "grid": 4, "heads": 8}
#: open choices varied: depth, FFN width, norm placement, projector norm, outer residual
VARIANTS = [
    SMALL,
    {**SMALL, "norm_first": True, "projector_norm": "instance"},
    {"tokens": 16, "grid": 4, "heads": 4, "encoder_layers": 2, "decoder_layers": 2, "ffn_multiplier": 2},
    {**SMALL, "outer_residual": True},
]


def build(c: int, **params) -> TransformerOp:
    torch.manual_seed(0)
    return get_op(TRANSFORMER).build(c, c, **params)


@pytest.mark.parametrize("shape", [(16, 16, 16), (8, 8, 8), (4, 4, 4), (2, 2, 2), (5, 7, 9), (3, 1, 6)])
def test_output_shape_equals_input_shape_at_every_level_and_odd_sizes(shape):
    op = build(6, **SMALL)
    x = torch.randn(2, 6, *shape)
    assert op(x).shape == x.shape


def test_attention_weights_are_tokens_by_grid_and_rows_sum_to_one():
    op = build(6, **SMALL).eval()
    op.keep_attention = True
    op(torch.randn(3, 6, 5, 7, 9))
    att = op.last_attention
    assert att.shape == (3, 8, 4**3)
    assert torch.allclose(att.sum(-1), torch.ones(3, 8), atol=1e-5)
    assert not att.requires_grad


def test_paper_attention_map_is_512_by_16_cubed():
    with torch.device("meta"):
        op = get_op(TRANSFORMER).build(32, 32)
        op.keep_attention = True
        op(torch.empty(1, 32, 20, 20, 20))
    assert tuple(op.last_attention.shape) == (1, 512, 4096)
    assert TRANSFORMER_DEFAULTS["heads"] == 8


def test_position_map_is_eq2_and_learnable():
    p = position_map(4)
    assert p.shape == (1, 3, 4, 4, 4)
    assert p[0, 0, 3, 0, 0] == 0.75 and p[0, 1, 0, 2, 0] == 0.5 and p[0, 2, 0, 0, 1] == 0.25
    op = build(2, **SMALL)
    assert isinstance(op.position, torch.nn.Parameter) and torch.equal(op.position.detach(), p)


def test_the_attention_weights_multiply_the_tokens():
    """Uniform attention (1/G everywhere) must change the output: the weights are applied."""
    op = build(4, **SMALL).eval()
    x = torch.randn(1, 4, 6, 6, 6)
    reference = op(x)
    op.attention.forward = lambda hs, memory: torch.full_like(hs, 1.0 / hs.shape[-1])
    assert not torch.allclose(op(x), reference)


def test_outer_residual_adds_the_input():
    plain, residual = build(4, **SMALL).eval(), build(4, **SMALL, outer_residual=True).eval()
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, 5, 5, 5)
    assert torch.allclose(residual(x), plain(x) + x, atol=1e-6)


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("c, shape, batch", [(8, (16, 16, 16), 2), (16, (5, 7, 9), 1), (32, (2, 2, 2), 2)])
def test_memory_cost_is_what_autograd_saves(params, c, shape, batch):
    op = build(c, **params).train()
    x = torch.randn(batch, c, *shape)
    measured = saved_activation_bytes(lambda: op(x), exclude=op) / batch
    assert transformer_memory(c, c, shape, **params) == pytest.approx(measured, rel=0.02)
    assert get_op(TRANSFORMER).memory(c, c, shape, **params) == transformer_memory(c, c, shape, **params)


def test_memory_cost_is_set_by_the_grid_not_the_level():
    """Resolution-aware: evaluated at each level's shape, the transformer's cost stays near
    constant while a conv's falls 8x per level."""
    c = 16
    costs = [transformer_memory(c, c, (s, s, s), **SMALL) for s in (32, 16, 8, 4)]
    convs = [get_op("conv_3x3x3").memory(c, c, (s, s, s)) for s in (32, 16, 8, 4)]
    assert len(set(costs)) == 1
    assert convs[0] == pytest.approx(8 * convs[1], rel=0.01)


@pytest.mark.parametrize("params", VARIANTS[:3])
def test_flops_match_the_flop_counter(params):
    op = build(8, **params)
    x = torch.randn(1, 8, 5, 7, 9)
    with FlopCounterMode(display=False) as counter:
        op(x)
    assert transformer_flops(8, 8, (5, 7, 9), **params) == pytest.approx(counter.get_total_flops(), rel=0.01)


def test_unknown_parameters_and_bad_heads_are_refused():
    with pytest.raises(ValueError, match="unknown parameter"):
        transformer_memory(4, 4, (4, 4, 4), token=8)
    with pytest.raises(ValueError, match="heads"):
        TransformerOp(4, 4, tokens=6, grid=4, heads=4)
