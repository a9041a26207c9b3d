"""The C2FNAS ops (sec. 4.1 template), registered in ``nasengine.ops.OPS`` at import.

- ``c2fnas_stem``: the begin module, two 3x3x3 convs with strides 1 and 2 (``[B,c_in,*S] ->
  [B,c_out,*S/2]``; the first conv gives ``c_out // 2`` channels, InstanceNorm + ReLU between).
- ``c2fnas_down``: a down-sampling, ReLU -> 3x3x3 conv stride 2 -> InstanceNorm
  (``[B,c_in,*S] -> [B,c_out,*S/2]``; the text: "implemented by a 3x3x3 3D convolution with
  stride 2"). The up-sampling is the shared ``up`` (trilinear x2, then a 1x1x1 conv).
- ``c2fnas_3d`` / ``c2fnas_p3d`` / ``c2fnas_2d``: the cell op ("colour") of the fine space,
  ReLU -> core -> InstanceNorm -> ReLU -> 1x1x1 conv -> InstanceNorm, with core = 3x3x3,
  3x3x1 then 1x1x3 (P3D) or 3x3x1 (2D). The trailing 1x1x1 conv is the cell's output conv
  ("then a 1x1x1 convolution is applied to the output"); the per-input 1x1x1 preprocessing
  convs are the shared ``conv_1x1x1`` on the cell's incoming edges. This is the structure of
  public re-implementation A (METHOD-NOTES 1.7): the cell op runs once, on the sum.

Memory (bytes autograd saves per sample, fp32) follows what PyTorch saves: a ReLU saves its
output (the next conv saves the same storage), a conv its input, an InstanceNorm its input plus
``2 * C`` floats; the first stem conv saves the image.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nasengine.ops import OPS, OpSpec, register_op
from nasengine.ops.operations import InstanceNorm

__all__ = ["CELL_OP_NAMES", "CORE_KERNELS", "C2FNASCellOp", "C2FNASStem", "C2FNASDown",
           "STEM_OP", "DOWN_OP"]

BYTES = 4
STEM_OP = "c2fnas_stem"
DOWN_OP = "c2fnas_down"
#: The fine space's op set, in the paper's order: 3D, P3D, 2D (sec. 3.4).
CORE_KERNELS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "c2fnas_3d": ((3, 3, 3),),
    "c2fnas_p3d": ((3, 3, 1), (1, 1, 3)),
    "c2fnas_2d": ((3, 3, 1),),
}
CELL_OP_NAMES: tuple[str, ...] = tuple(CORE_KERNELS)


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _half(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(s) // 2 for s in shape)


def _norm_bytes(c: int, s: int) -> int:
    return (c * s + 2 * c) * BYTES


class C2FNASCellOp(nn.Module):
    """ReLU -> core convs (no bias) -> IN -> ReLU -> 1x1x1 conv -> IN.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``; the core keeps ``c_in`` channels.
    """

    def __init__(self, c_in: int, c_out: int, name: str):
        super().__init__()
        kernels = CORE_KERNELS[name]
        self.act = nn.ReLU()
        self.core = nn.Sequential(*[nn.Conv3d(c_in, c_in, k, padding=tuple(v // 2 for v in k),
                                              bias=False) for k in kernels])
        self.norm = InstanceNorm(c_in)
        self.act_out = nn.ReLU()
        self.conv_out = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm_out = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.core(self.act(x)))
        return self.norm_out(self.conv_out(self.act_out(x)))


def _cell_memory(name: str):
    n_core = len(CORE_KERNELS[name])

    def memory(c_in, c_out, spatial_shape, **_) -> int:
        s = _prod(spatial_shape)
        # ReLU out, (P3D: the middle tensor), norm in, ReLU out, norm in
        return (n_core * c_in * s + c_in * s) * BYTES + 2 * c_in * BYTES + \
            c_in * s * BYTES + _norm_bytes(c_out, s)

    return memory


def _cell_flops(name: str):
    kernels = CORE_KERNELS[name]

    def flops(c_in, c_out, spatial_shape, **_) -> int:
        s = _prod(spatial_shape)
        return 2 * s * (sum(c_in * c_in * _prod(k) for k in kernels) + c_in * c_out)

    return flops


class C2FNASStem(nn.Module):
    """Begin module: 3x3x3 conv (stride 1, ``c_out // 2``) -> IN -> ReLU -> 3x3x3 conv
    (stride 2) -> IN. Shapes: ``[B, c_in, *S] -> [B, c_out, *S/2]``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        mid = max(1, c_out // 2)
        self.conv1 = nn.Conv3d(c_in, mid, 3, padding=1, bias=False)
        self.norm1 = InstanceNorm(mid)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv3d(mid, c_out, 3, stride=2, padding=1, bias=False)
        self.norm2 = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


def _stem_memory(c_in, c_out, spatial_shape, **_) -> int:
    s = _prod(spatial_shape)
    mid = max(1, c_out // 2)
    return c_in * s * BYTES + _norm_bytes(mid, s) + mid * s * BYTES + \
        _norm_bytes(c_out, _prod(_half(spatial_shape)))


def _stem_flops(c_in, c_out, spatial_shape, **_) -> int:
    mid = max(1, c_out // 2)
    s = _prod(spatial_shape)
    return 2 * 27 * (c_in * mid * s + mid * c_out * _prod(_half(spatial_shape)))


class C2FNASDown(nn.Module):
    """Down-sampling: ReLU -> 3x3x3 conv stride 2 -> IN. ``[B,c_in,*S] -> [B,c_out,*S/2]``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv3d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


def _down_memory(c_in, c_out, spatial_shape, **_) -> int:
    return c_in * _prod(spatial_shape) * BYTES + _norm_bytes(c_out, _prod(_half(spatial_shape)))


def _down_flops(c_in, c_out, spatial_shape, **_) -> int:
    return 2 * 27 * c_in * c_out * _prod(_half(spatial_shape))


def _register() -> None:
    for name in CELL_OP_NAMES:
        kernels = " then ".join("x".join(map(str, k)) for k in CORE_KERNELS[name])
        register_op(OpSpec(
            name=name, kind="cell",
            build=lambda c_in, c_out, _n=name, **_: C2FNASCellOp(c_in, c_out, _n),
            memory=_cell_memory(name), flops=_cell_flops(name),
            description=f"C2FNAS cell op: ReLU, {kernels} conv, IN, ReLU, 1x1x1 conv, IN"))
    register_op(OpSpec(
        name=STEM_OP, kind="stem", build=lambda c_in, c_out, **_: C2FNASStem(c_in, c_out),
        memory=_stem_memory, flops=_stem_flops, level_delta=lambda **_: 1,
        description="C2FNAS begin module: 3x3x3 conv stride 1, IN, ReLU, 3x3x3 conv stride 2, IN"))
    register_op(OpSpec(
        name=DOWN_OP, kind="resample", build=lambda c_in, c_out, **_: C2FNASDown(c_in, c_out),
        memory=_down_memory, flops=_down_flops, level_delta=lambda **_: 1,
        description="C2FNAS down-sampling: ReLU, 3x3x3 conv stride 2, IN"))


if STEM_OP not in OPS:
    _register()
