"""UXNet ops (Ji et al., MICCAI 2020, sec. 2.1), registered in the shared op registry at import.

The searchable building block (SBB) has two layers, each a softmax-weighted choice among:

- normal layer, 7 ops (:data:`NORMAL_OPS`): 3x3x3 conv; 3x3x1 conv; 5x5x5 conv; P3D (3x3x1 then
  1x1x3); two stacked 3x3x3 convs; 3x3x3 conv with dilation 2; 5x5x5 conv with dilation 2;
- reduction layer, 3 ops (:data:`REDUCTION_OPS`): max pooling; average pooling; 3x3x3 conv
  with stride 2;
- expansion layer, 2 ops (:data:`EXPANSION_OPS`): transposed conv; trilinear upsampling.

Plus the fixed ops of the network: ``uxnet_align`` (the transform T of eq. 1 that aligns a
source's resolution and channels to its target: Fig. 3's "Conv3d 1x1x1" and "Down2"),
``uxnet_stem`` and ``uxnet_head``.

Choices the paper leaves open (it names the ops only):

- a conv op is ReLU -> conv (no bias) -> InstanceNorm, the convention of the shared ops;
- the two-conv ops (P3D, two stacked 3x3x3) put a single ReLU before and a single norm after
  both convs (as the shared P3D ops);
- a reduction or expansion layer also doubles / halves the channels (channels are C * 2^level):
  the pools are followed by a 1x1x1 conv and a norm; the transposed conv has kernel 2, stride
  2; trilinear upsampling runs ReLU -> 1x1x1 conv -> norm at the coarse resolution, then
  upsamples (cheaper than convolving at the fine one; align_corners False);
- T is ReLU -> [average pooling 2^d] -> 1x1x1 conv -> norm [-> trilinear upsampling 2^d].

Memory (``OpSpec.memory``) is the bytes autograd saves per sample BEYOND the op's input
tensor (``OpSpec.saves_input`` says whether the op keeps that input too; the genotype figures
count such a tensor once however many ops keep it). Measured with saved-tensor hooks (the
tests pin every op): ReLU saves its output; a conv and a transposed conv save their input;
InstanceNorm saves its input plus 2 floats per channel; max pooling saves its input and int64
indices; average pooling saves its input; trilinear upsampling saves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops import OpSpec, register_op
from ...ops.operations import InstanceNorm

__all__ = [
    "NORMAL_OPS", "REDUCTION_OPS", "EXPANSION_OPS", "ALIGN", "STEM", "HEAD", "BYTES",
    "ConvNorm", "StackedConvNorm", "PoolConvNorm", "TransposedConvNorm", "TrilinearUp", "Align",
    "Stem", "Head", "UXNET_OPS",
]

BYTES = 4  # float32 activations
INDEX_BYTES = 8  # max pooling keeps int64 indices

#: Normal-layer candidates (sec. 2.1, in the paper's order; index = column of alpha).
NORMAL_OPS: tuple[str, ...] = (
    "uxnet_conv_3x3x3", "uxnet_conv_3x3x1", "uxnet_conv_5x5x5", "uxnet_p3d",
    "uxnet_conv_3x3x3_x2", "uxnet_dil2_3x3x3", "uxnet_dil2_5x5x5",
)
#: Reduction-layer candidates (encoder SBB, halve the resolution, double the channels).
REDUCTION_OPS: tuple[str, ...] = ("uxnet_max_pool", "uxnet_avg_pool", "uxnet_conv_3x3x3_s2")
#: Expansion-layer candidates (decoder SBB, double the resolution, halve the channels).
EXPANSION_OPS: tuple[str, ...] = ("uxnet_transposed_conv", "uxnet_trilinear")
ALIGN, STEM, HEAD = "uxnet_align", "uxnet_stem", "uxnet_head"


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _norm_bytes(c: int, s: int) -> int:
    return (c * s + 2 * c) * BYTES


def _pad(kernel: Sequence[int], dilation: int) -> tuple[int, ...]:
    return tuple(dilation * (k // 2) for k in kernel)


# ---- modules ----------------------------------------------------------------------------------
class ConvNorm(nn.Module):
    """ReLU -> Conv3d(kernel, dilation, stride; 'same' padding; no bias) -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S / stride]``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: Sequence[int], dilation: int = 1, stride: int = 1):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv3d(c_in, c_out, tuple(kernel), stride=stride, padding=_pad(kernel, dilation),
                              dilation=dilation, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


class StackedConvNorm(nn.Module):
    """ReLU -> Conv3d(k0) -> Conv3d(k1) -> InstanceNorm (P3D; two stacked 3x3x3 convs).

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int, k0: Sequence[int], k1: Sequence[int]):
        super().__init__()
        self.act = nn.ReLU()
        self.conv0 = nn.Conv3d(c_in, c_out, tuple(k0), padding=_pad(k0, 1), bias=False)
        self.conv1 = nn.Conv3d(c_out, c_out, tuple(k1), padding=_pad(k1, 1), bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv1(self.conv0(self.act(x))))


class PoolConvNorm(nn.Module):
    """2x max or average pooling -> Conv3d 1x1x1 (channels) -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/2]`` (S even).
    """

    def __init__(self, c_in: int, c_out: int, pool: str):
        super().__init__()
        self.pool = nn.MaxPool3d(2) if pool == "max" else nn.AvgPool3d(2)
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.pool(x)))


class TransposedConvNorm(nn.Module):
    """ReLU -> ConvTranspose3d(kernel 2, stride 2, no bias) -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *2S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.ConvTranspose3d(c_in, c_out, 2, stride=2, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


class TrilinearUp(nn.Module):
    """ReLU -> Conv3d 1x1x1 -> InstanceNorm -> trilinear upsampling by ``factor``.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S * factor]``.
    """

    def __init__(self, c_in: int, c_out: int, factor: int = 2):
        super().__init__()
        self.inner = ConvNorm(c_in, c_out, (1, 1, 1))
        self.factor = int(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.inner(x), scale_factor=self.factor, mode="trilinear", align_corners=False)


class Align(nn.Module):
    """The transform T of eq. 1: from a source at level k to a target at level j, shift
    d = j - k: ReLU -> [avg pool 2^d when d > 0] -> Conv3d 1x1x1 -> InstanceNorm
    [-> trilinear upsampling 2^-d when d < 0].

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S / 2^d]``.
    """

    def __init__(self, c_in: int, c_out: int, shift: int):
        super().__init__()
        self.shift = int(shift)
        self.act = nn.ReLU()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(x)
        if self.shift > 0:
            y = F.avg_pool3d(y, 2**self.shift)
        y = self.norm(self.conv(y))
        if self.shift < 0:
            y = F.interpolate(y, scale_factor=2 ** (-self.shift), mode="trilinear", align_corners=False)
        return y


class Stem(nn.Module):
    """Conv3d 3x3x3 (no bias) -> InstanceNorm at the input resolution (N_{0,0} of Fig. 3).

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Head(nn.Module):
    """ReLU -> Conv3d 1x1x1 with bias: class logits ("Predictions" in Fig. 3).

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(x))


# ---- costs ------------------------------------------------------------------------------------
def _conv_spec(name: str, kernel: Sequence[int], dilation: int = 1, description: str = "") -> OpSpec:
    k = _prod(kernel)

    def memory(c_in, c_out, spatial_shape, **_):
        s = _prod(spatial_shape)
        return c_in * s * BYTES + _norm_bytes(c_out, s)  # ReLU out (= conv in), norm in

    def flops(c_in, c_out, spatial_shape, **_):
        return 2 * c_in * c_out * k * _prod(spatial_shape)

    return OpSpec(name, "cell", lambda c_in, c_out, **_: ConvNorm(c_in, c_out, kernel, dilation),
                  memory, flops, description=description)


def _stacked_spec(name: str, k0: Sequence[int], k1: Sequence[int], description: str) -> OpSpec:
    def memory(c_in, c_out, spatial_shape, **_):
        s = _prod(spatial_shape)
        return c_in * s * BYTES + c_out * s * BYTES + _norm_bytes(c_out, s)  # ReLU out, mid, norm in

    def flops(c_in, c_out, spatial_shape, **_):
        s = _prod(spatial_shape)
        return 2 * s * (c_in * c_out * _prod(k0) + c_out * c_out * _prod(k1))

    return OpSpec(name, "cell", lambda c_in, c_out, **_: StackedConvNorm(c_in, c_out, k0, k1),
                  memory, flops, description=description)


def _half(shape: Sequence[int], levels: int = 1) -> tuple[int, ...]:
    return tuple(int(s) // 2**levels for s in shape)


def _pool_spec(name: str, pool: str) -> OpSpec:
    def memory(c_in, c_out, spatial_shape, **_):
        so = _prod(_half(spatial_shape))
        indices = c_in * so * INDEX_BYTES if pool == "max" else 0
        return indices + c_in * so * BYTES + _norm_bytes(c_out, so)  # [indices], conv in, norm in

    def flops(c_in, c_out, spatial_shape, **_):
        return 2 * c_in * c_out * _prod(_half(spatial_shape))

    return OpSpec(name, "resample", lambda c_in, c_out, **_: PoolConvNorm(c_in, c_out, pool), memory, flops,
                  level_delta=lambda **_: 1, saves_input=True,
                  description=f"2x {pool} pooling, 1x1x1 conv, InstanceNorm (reduction layer)")


def _strided_memory(c_in, c_out, spatial_shape, **_):
    return c_in * _prod(spatial_shape) * BYTES + _norm_bytes(c_out, _prod(_half(spatial_shape)))


def _strided_flops(c_in, c_out, spatial_shape, **_):
    return 2 * c_in * c_out * 27 * _prod(_half(spatial_shape))


def _transposed_memory(c_in, c_out, spatial_shape, **_):
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, 8 * s)  # ReLU out (= conv in), norm in at 2x


def _transposed_flops(c_in, c_out, spatial_shape, **_):
    return 2 * c_in * c_out * 8 * _prod(spatial_shape)


def _trilinear_memory(c_in, c_out, spatial_shape, **_):
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, s)  # ReLU out, norm in; the upsampling saves nothing


def _conv1_flops(c_in, c_out, spatial_shape, **_):
    return 2 * c_in * c_out * _prod(spatial_shape)


def _align_shape(spatial_shape: Sequence[int], shift: int) -> tuple[int, ...]:
    """Where the 1x1x1 conv of :class:`Align` runs: pooled when shift > 0, else the source's."""
    return _half(spatial_shape, shift) if shift > 0 else tuple(int(s) for s in spatial_shape)


def _align_memory(c_in, c_out, spatial_shape, shift: int = 0, **_):
    s = _prod(spatial_shape)
    sc = _prod(_align_shape(spatial_shape, int(shift)))
    pooled = c_in * sc * BYTES if int(shift) > 0 else 0  # the conv's input is a new tensor
    return c_in * s * BYTES + pooled + _norm_bytes(c_out, sc)  # ReLU out (= pool in), [pooled], norm in


def _align_flops(c_in, c_out, spatial_shape, shift: int = 0, **_):
    return 2 * c_in * c_out * _prod(_align_shape(spatial_shape, int(shift)))


def _stem_memory(c_in, c_out, spatial_shape, **_):
    s = _prod(spatial_shape)
    return c_in * s * BYTES + _norm_bytes(c_out, s)  # the conv keeps the image, norm in


def _stem_flops(c_in, c_out, spatial_shape, **_):
    return 2 * c_in * c_out * 27 * _prod(spatial_shape)


def _head_memory(c_in, c_out, spatial_shape, **_):
    return c_in * _prod(spatial_shape) * BYTES  # ReLU out (= conv in)


def _check_shift(shift: int = 0, **_) -> int:
    if isinstance(shift, bool) or not isinstance(shift, int):
        raise ValueError(f"shift must be an integer level change, got {shift!r}")
    return shift


#: Every UXNet op, registered below.
UXNET_OPS: dict[str, OpSpec] = {spec.name: spec for spec in (
    _conv_spec("uxnet_conv_3x3x3", (3, 3, 3), description="ReLU, 3x3x3 conv, InstanceNorm (normal layer)"),
    _conv_spec("uxnet_conv_3x3x1", (3, 3, 1), description="ReLU, 3x3x1 conv, InstanceNorm (normal layer)"),
    _conv_spec("uxnet_conv_5x5x5", (5, 5, 5), description="ReLU, 5x5x5 conv, InstanceNorm (normal layer)"),
    _stacked_spec("uxnet_p3d", (3, 3, 1), (1, 1, 3), "ReLU, 3x3x1 conv, 1x1x3 conv, InstanceNorm (pseudo-3D, normal layer)"),
    _stacked_spec("uxnet_conv_3x3x3_x2", (3, 3, 3), (3, 3, 3), "ReLU, two stacked 3x3x3 convs, InstanceNorm (normal layer)"),
    _conv_spec("uxnet_dil2_3x3x3", (3, 3, 3), 2, "ReLU, 3x3x3 conv with dilation 2, InstanceNorm (normal layer)"),
    _conv_spec("uxnet_dil2_5x5x5", (5, 5, 5), 2, "ReLU, 5x5x5 conv with dilation 2, InstanceNorm (normal layer)"),
    _pool_spec("uxnet_max_pool", "max"),
    _pool_spec("uxnet_avg_pool", "avg"),
    OpSpec("uxnet_conv_3x3x3_s2", "resample", lambda c_in, c_out, **_: ConvNorm(c_in, c_out, (3, 3, 3), stride=2),
           _strided_memory, _strided_flops, level_delta=lambda **_: 1,
           description="ReLU, 3x3x3 conv with stride 2, InstanceNorm (reduction layer)"),
    OpSpec("uxnet_transposed_conv", "resample", lambda c_in, c_out, **_: TransposedConvNorm(c_in, c_out),
           _transposed_memory, _transposed_flops, level_delta=lambda **_: -1,
           description="ReLU, 2x2x2 transposed conv with stride 2, InstanceNorm (expansion layer)"),
    OpSpec("uxnet_trilinear", "resample", lambda c_in, c_out, **_: TrilinearUp(c_in, c_out),
           _trilinear_memory, _conv1_flops, level_delta=lambda **_: -1,
           description="ReLU, 1x1x1 conv, InstanceNorm, 2x trilinear upsampling (expansion layer)"),
    OpSpec(ALIGN, "resample", lambda c_in, c_out, shift=0, **_: Align(c_in, c_out, _check_shift(shift)),
           _align_memory, _align_flops, level_delta=lambda shift=0, **_: _check_shift(shift),
           description="T of eq. 1: ReLU, [avg pool 2^shift], 1x1x1 conv, InstanceNorm, [trilinear up 2^-shift]"),
    OpSpec(STEM, "stem", lambda c_in, c_out, **_: Stem(c_in, c_out), _stem_memory, _stem_flops,
           description="3x3x3 conv, InstanceNorm at the input resolution (UXNet N_{0,0})"),
    OpSpec(HEAD, "head", lambda c_in, c_out, **_: Head(c_in, c_out), _head_memory, _conv1_flops,
           description="ReLU, 1x1x1 conv with bias to class logits (UXNet prediction)"),
)}
for _spec in UXNET_OPS.values():
    register_op(_spec)
