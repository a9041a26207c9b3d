"""The shared ops, registered in :data:`nasengine.ops.OPS` at import (constructor, memory cost, FLOPs, shape rule).

Memory costs are the bytes of activations that autograd saves for backward, per sample, for
one forward of the op built by ``OpSpec.build`` (parameters excluded; tensors that share a
storage counted once). They follow what PyTorch 2.x saves:

- ReLU saves its output; the conv after it saves the same tensor (its input): counted once.
- Conv3d saves its input (and its weight, a parameter: not counted).
- InstanceNorm (GroupNorm with one channel per group) saves its input plus ``2 * C`` floats (mean, rstd).
- Trilinear interpolation, concatenation, addition, multiplication by a constant and the identity save nothing.
- Average pooling saves its input only when the input requires grad (the image does not).

Exception: on CPU at batch size 1, ``head_up``/``head_out`` split volumes of depth >= 16 into two
halo slabs (a speed-up); their ReLU output then holds ``1 + 4/depth`` times the bytes counted here
(under 2% of a whole network).

``spatial_shape`` is always the op's INPUT spatial shape; ``OpSpec.out_shape`` gives the output.
FLOPs count 2 per multiply-accumulate of every convolution (norms, ReLUs, resampling ignored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn as nn

from .operations import (
    P3D_KERNELS,
    ConcatReLUConvNorm,
    FactorizedIncrease,
    FactorizedReduce,
    HeadOut,
    HeadUp,
    Identity,
    P3DReLUConvNorm,
    ReLUConvNorm,
    Stem,
)
from .registry import OPS, OpSpec, get_op, register_op

__all__ = ["OpSpec", "OPS", "CELL_OPS", "RESAMPLE_OPS", "SHARED_OPS", "get_op"]

BYTES = 4  # float32 activations


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _scaled(shape: Sequence[int], num: int, den: int) -> tuple[int, ...]:
    return tuple(int(s) * num // den for s in shape)


def _norm_bytes(c: int, s: int) -> int:
    return (c * s + 2 * c) * BYTES


# ---- cell ops ---------------------------------------------------------------------------------
def _skip_build(c_in: int, c_out: int, **_) -> nn.Module:
    if c_in != c_out:
        raise ValueError(f"skip needs c_in == c_out, got {c_in} and {c_out}")
    return Identity()


def _conv_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, s)  # ReLU out (= conv in) + norm in


def _conv_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * c_in * c_out * 27 * _prod(spatial_shape)


def _conv1_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * c_in * c_out * _prod(spatial_shape)


def _concat_conv1_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return sum(c_in) * s * BYTES + _norm_bytes(c_out, s)  # ReLU out of the concatenation + norm in


def _concat_conv1_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * sum(c_in) * c_out * _prod(spatial_shape)


def _p3d_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return 2 * c_in * s * BYTES + _norm_bytes(c_out, s)  # ReLU out + mid + norm in


def _p3d_flops(name):
    k0, k1 = P3D_KERNELS[name]

    def flops(c_in, c_out, spatial_shape, **_) -> int:
        s = _prod(spatial_shape)
        return 2 * s * (c_in * c_in * _prod(k0) + c_in * c_out * _prod(k1))

    return flops


# ---- resampling -------------------------------------------------------------------------------
def _down_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, _prod(_scaled(spatial_shape, 1, 2)))


def _down_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * c_in * c_out * _prod(_scaled(spatial_shape, 1, 2))


def _up_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(_scaled(spatial_shape, 2, 1))
    return c_in * s * BYTES + _norm_bytes(c_out, s)


def _up_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * c_in * c_out * _prod(_scaled(spatial_shape, 2, 1))


# ---- stem and head ----------------------------------------------------------------------------
def _stem_memory(c_in, c_out, spatial_shape, factor: int = 2, **_) -> int:
    pooled = _scaled(spatial_shape, 2, int(factor))
    return c_in * _prod(pooled) * BYTES + _norm_bytes(c_out, _prod(_scaled(spatial_shape, 1, int(factor))))


def _stem_flops(c_in, c_out, spatial_shape, factor: int = 2, **_) -> int:
    return 2 * c_in * c_out * 27 * _prod(_scaled(spatial_shape, 1, int(factor)))


def _head_up_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, s)


def _head_up_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * c_in * c_out * 27 * _prod(spatial_shape)


def _head_out_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_in, s) + c_in * s * BYTES  # ReLU, norm in, norm out


def _head_out_flops(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    return 2 * s * (c_in * c_in * 27 + c_in * c_out)


def _p3d_spec(name: str) -> OpSpec:
    k0, k1 = P3D_KERNELS[name]
    return OpSpec(
        name=name,
        kind="cell",
        build=lambda c_in, c_out, **_: P3DReLUConvNorm(c_in, c_out, name),
        memory=_p3d_memory,
        flops=_p3d_flops(name),
        description=f"ReLU, {'x'.join(map(str, k0))} conv, {'x'.join(map(str, k1))} conv, InstanceNorm",
    )


#: The ops shared by every method, registered below (methods register their own).
SHARED_OPS: dict[str, OpSpec] = {
    "skip": OpSpec(
        "skip", "cell", _skip_build, lambda *a, **k: 0, lambda *a, **k: 0,
        same_channels=True, identity=True, description="identity (no ReLU, no norm)",
    ),
    "conv_3x3x3": OpSpec(
        "conv_3x3x3", "cell", lambda c_in, c_out, **_: ReLUConvNorm(c_in, c_out, (3, 3, 3)),
        _conv_memory, _conv_flops, description="ReLU, 3x3x3 conv, InstanceNorm",
    ),
    "conv_1x1x1": OpSpec(
        "conv_1x1x1", "cell", lambda c_in, c_out, **_: ReLUConvNorm(c_in, c_out, (1, 1, 1)),
        _conv_memory, _conv1_flops, description="ReLU, 1x1x1 conv, InstanceNorm (input preprocessing, channel change)",
    ),
    **{name: _p3d_spec(name) for name in P3D_KERNELS},
    "down": OpSpec(
        "down", "resample", lambda c_in, c_out, **_: FactorizedReduce(c_in, c_out),
        _down_memory, _down_flops, level_delta=lambda **_: 1,
        description="2x downsample: ReLU, factorized reduce (two strided 1x1x1 convs), InstanceNorm",
    ),
    "up": OpSpec(
        "up", "resample", lambda c_in, c_out, **_: FactorizedIncrease(c_in, c_out),
        _up_memory, _up_flops, level_delta=lambda **_: -1,
        description="2x trilinear upsample, ReLU, 1x1x1 conv, InstanceNorm",
    ),
    "stem": OpSpec(
        "stem", "stem", lambda c_in, c_out, factor=2, **_: Stem(c_in, c_out, int(factor)),
        _stem_memory, _stem_flops, level_delta=lambda factor=2, **_: int(math.log2(int(factor))),
        description="average-pool by factor/2, 3x3x3 conv stride 2, InstanceNorm",
    ),
    "head_up": OpSpec(
        "head_up", "head", lambda c_in, c_out, **_: HeadUp(c_in, c_out),
        _head_up_memory, _head_up_flops, level_delta=lambda **_: -1,
        description="ReLU, 3x3x3 conv, InstanceNorm, 2x trilinear upsample",
    ),
    "head_out": OpSpec(
        "head_out", "head", lambda c_in, c_out, **_: HeadOut(c_in, c_out),
        _head_out_memory, _head_out_flops,
        description="ReLU, 3x3x3 conv, InstanceNorm, 1x1x1 conv with bias to class logits",
    ),
    "concat_conv_1x1x1": OpSpec(
        "concat_conv_1x1x1", "node", lambda c_in, c_out, **_: ConcatReLUConvNorm(tuple(c_in), c_out),
        _concat_conv1_memory, _concat_conv1_flops, arity=0,
        description="multi-input: channel concatenation of the inputs, ReLU, 1x1x1 conv, InstanceNorm",
    ),
}
for _spec in SHARED_OPS.values():
    register_op(_spec)

#: Shared ops that keep the resolution and may sit on a searchable edge (fixed at import: the
#: ops methods register later are not in it).
CELL_OPS: tuple[str, ...] = tuple(n for n, s in SHARED_OPS.items() if s.kind == "cell")
#: Resampling ops, indexed by the genotype's ``resample`` field.
RESAMPLE_OPS: dict[str, str] = {"down": "down", "up": "up"}

