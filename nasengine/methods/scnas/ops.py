"""SCNAS ops (Kim et al. 2019, sec. 3): the 8 candidate edge ops, their stride-2 variants for
reduction cells, and the fixed macro ops (stem, cell-input preprocessing, out cell).

The 8 candidates, in the paper's order (:data:`PRIMITIVES`, local names):
``conv`` (3x3x3 conv), ``sep_dil2`` / ``sep_dil3`` / ``sep_dil4`` (depthwise-separable
dilated 3x3x3 convs), ``max_pool`` / ``avg_pool`` (3x3x3), ``identity`` and ``zero``.
Conv ops are LeakyReLU -> conv -> InstanceNorm, as the paper says. Choices the paper leaves
open: LeakyReLU slope 0.01 (PyTorch's default, nnU-Net's too); a separable conv is depthwise
3x3x3 (dilation r) then pointwise 1x1x1, as DARTS' ``DilConv``; pools have no norm and
``count_include_pad=False`` (DARTS); on a stride-2 edge every op has stride 2 and the identity
becomes a factorized reduce (DARTS' convention); InstanceNorm is affine (the shared
:class:`~nasengine.ops.operations.InstanceNorm`).

Every op is registered in the shared op registry when this module is imported, under
``scnas_*`` names (the identity reuses the shared ``skip``). Stride-2 ops are registered with
kind ``"resample"`` and a level change of +1 (they halve the resolution by themselves, so a
genotype edge carries them with ``resample: "down"`` and nothing is inserted before them).

Memory (``OpSpec.memory``) is the bytes autograd saves for backward per sample BEYOND the op's
input tensor: the input belongs to the source node and is shared by every op that reads it, so
the genotype figures and the estimates (:mod:`.memory`) count it once per tensor
(``OpSpec.saves_input``, from :data:`SAVES_INPUT`, says which ops keep it). What PyTorch 2.x saves, measured with saved-tensor hooks (tests pin it):
LeakyReLU saves its input; a conv saves its input; GroupNorm/InstanceNorm saves its input plus
2 floats per channel; max pooling saves its input and int64 indices; average pooling saves its
input; trilinear upsampling, concatenation and addition save nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops import OPS, OpSpec, register_op
from ...ops.operations import InstanceNorm

__all__ = [
    "PRIMITIVES", "OP_NAMES", "STRIDED_OP_NAMES", "ZERO", "IDENTITY", "SAVES_INPUT", "NEGATIVE_SLOPE",
    "op_name", "build_candidate", "Zero", "ConvOp", "SepDilConvOp", "PoolOp", "FactorizedReduceOp",
    "Stem", "Preprocess", "PreprocessDown", "PreprocessUp", "OutCell", "register_scnas_ops",
]

BYTES = 4
INDEX_BYTES = 8  # max pooling keeps int64 indices
NEGATIVE_SLOPE = 0.01

#: The 8 candidate ops of every edge, in the paper's order (sec. 3); index = position in alpha.
PRIMITIVES: tuple[str, ...] = (
    "conv", "sep_dil2", "sep_dil3", "sep_dil4", "max_pool", "avg_pool", "identity", "zero",
)
ZERO = PRIMITIVES.index("zero")
IDENTITY = PRIMITIVES.index("identity")
_DILATION = {"sep_dil2": 2, "sep_dil3": 3, "sep_dil4": 4}

#: Registered op name of each candidate on a stride-1 edge.
OP_NAMES: dict[str, str] = {
    "conv": "scnas_conv_3x3x3",
    "sep_dil2": "scnas_sep_dil2_3x3x3",
    "sep_dil3": "scnas_sep_dil3_3x3x3",
    "sep_dil4": "scnas_sep_dil4_3x3x3",
    "max_pool": "scnas_max_pool_3x3x3",
    "avg_pool": "scnas_avg_pool_3x3x3",
    "identity": "skip",
    "zero": "scnas_zero",
}
#: Registered op name of each candidate on a stride-2 edge (reduction cells). ``zero`` keeps
#: its name: it is never built into a network (zero = no edge).
STRIDED_OP_NAMES: dict[str, str] = {
    **{k: v + "_s2" for k, v in OP_NAMES.items() if k not in ("identity", "zero")},
    "identity": "scnas_identity_s2",
    "zero": "scnas_zero",
}

#: Candidates whose module saves its input tensor for backward (LeakyReLU or pooling first).
SAVES_INPUT: dict[str, bool] = {
    "conv": True, "sep_dil2": True, "sep_dil3": True, "sep_dil4": True, "max_pool": True,
    "avg_pool": True, "identity": False, "zero": False,
}
#: ... and for stride 2 (the factorized reduce starts with a LeakyReLU).
SAVES_INPUT_STRIDED: dict[str, bool] = {**SAVES_INPUT, "identity": True}


def op_name(primitive: str, stride: int = 1) -> str:
    """Registered op name of candidate ``primitive`` on an edge of ``stride`` (1 or 2)."""
    return (STRIDED_OP_NAMES if stride == 2 else OP_NAMES)[primitive]


def _prod(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _out(shape: Sequence[int], stride: int) -> tuple[int, ...]:
    return tuple(int(s) // stride for s in shape)


# ---- modules ----------------------------------------------------------------------------------
class Zero(nn.Module):
    """``zero``: the disconnection. Returns zeros of the output shape (stride 1 or 2).

    Shapes: ``[B, C, *S] -> [B, C, *S/stride]``.
    """

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return torch.zeros_like(x)
        return x.new_zeros(x.shape[0], x.shape[1], *(s // self.stride for s in x.shape[2:]))


class ConvOp(nn.Module):
    """``conv``: LeakyReLU -> Conv3d 3x3x3 (stride 1 or 2, no bias) -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/stride]`` (S even when stride is 2).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(F.leaky_relu(x, NEGATIVE_SLOPE)))


class SepDilConvOp(nn.Module):
    """``sep_dil{r}``: LeakyReLU -> depthwise 3x3x3 conv (dilation r, stride s) -> pointwise
    1x1x1 conv -> InstanceNorm (DARTS' ``DilConv`` with the paper's LeakyReLU and IN).

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/stride]``.
    """

    def __init__(self, c_in: int, c_out: int, dilation: int, stride: int = 1):
        super().__init__()
        self.depthwise = nn.Conv3d(c_in, c_in, 3, stride=stride, padding=dilation, dilation=dilation,
                                   groups=c_in, bias=False)
        self.pointwise = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.pointwise(self.depthwise(F.leaky_relu(x, NEGATIVE_SLOPE))))


class PoolOp(nn.Module):
    """``max_pool`` / ``avg_pool``: 3x3x3 pooling, padding 1, stride 1 or 2 (no norm).

    Shapes: ``[B, C, *S] -> [B, C, *S/stride]``.
    """

    def __init__(self, mode: str, stride: int = 1):
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"pool mode must be max or avg, got {mode!r}")
        self.mode, self.stride = mode, int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "max":
            return F.max_pool3d(x, 3, stride=self.stride, padding=1)
        return F.avg_pool3d(x, 3, stride=self.stride, padding=1, count_include_pad=False)


class FactorizedReduceOp(nn.Module):
    """Stride-2 identity (DARTS): LeakyReLU, two strided 1x1x1 convs on the even and the odd
    voxel grids, each giving half of the output channels, concat, InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/2]`` (S even).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_1 = nn.Conv3d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv3d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, NEGATIVE_SLOPE)
        return self.norm(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:, 1:])], dim=1))


class Stem(nn.Module):
    """Stem cell (fixed): Conv3d 3x3x3 (image channels -> F, no bias) -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Preprocess(nn.Module):
    """Cell-input preprocessing at the same resolution (DARTS' ``ReLUConvBN`` 1x1x1):
    LeakyReLU -> 1x1x1 conv -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(F.leaky_relu(x, NEGATIVE_SLOPE)))


class PreprocessDown(FactorizedReduceOp):
    """Preprocessing of a cell input one level finer than the cell (DARTS' ``reduction_prev``):
    a factorized reduce. Shapes: ``[B, c_in, *S] -> [B, c_out, *S/2]``."""


class PreprocessUp(nn.Module):
    """Expansion-cell input preprocessing ("pre-upsampling", sec. 3): LeakyReLU -> 1x1x1 conv
    -> InstanceNorm -> trilinear x2 (align_corners=False). The 1x1x1 conv runs before the
    upsampling, at the coarse resolution (8x cheaper; the paper does not fix the order).

    Shapes: ``[B, c_in, *S] -> [B, c_out, *2S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(F.leaky_relu(x, NEGATIVE_SLOPE)))
        return F.interpolate(y, scale_factor=2.0, mode="trilinear", align_corners=False)


class OutCell(nn.Module):
    """Out cell (fixed): LeakyReLU -> 1x1x1 conv with bias to the class logits.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.leaky_relu(x, NEGATIVE_SLOPE))


def build_candidate(primitive: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """The module of candidate ``primitive`` on an edge ``c_in -> c_out`` of ``stride``.

    Pools, ``identity`` and ``zero`` need ``c_in == c_out`` (always true inside a cell).
    """
    if primitive == "conv":
        return ConvOp(c_in, c_out, stride)
    if primitive in _DILATION:
        return SepDilConvOp(c_in, c_out, _DILATION[primitive], stride)
    if primitive in ("max_pool", "avg_pool", "identity", "zero"):
        if c_in != c_out:
            raise ValueError(f"{primitive} needs c_in == c_out, got {c_in} and {c_out}")
        if primitive == "zero":
            return Zero(stride)
        if primitive == "identity":
            return nn.Identity() if stride == 1 else FactorizedReduceOp(c_in, c_out)
        return PoolOp(primitive[:3], stride)
    raise KeyError(f"unknown SCNAS op {primitive!r}; known: {', '.join(PRIMITIVES)}")


# ---- costs ------------------------------------------------------------------------------------
def candidate_memory(primitive: str, c_in: int, c_out: int, spatial_shape: Sequence[int], stride: int = 1) -> int:
    """Bytes saved for backward per sample by candidate ``primitive`` beyond its input tensor
    (see the module docstring); ``spatial_shape`` is the op's input shape."""
    s_in, s_out = _prod(spatial_shape), _prod(_out(spatial_shape, stride))
    norm = (c_out * s_out + 2 * c_out) * BYTES
    if primitive == "conv":
        return c_in * s_in * BYTES + norm  # LeakyReLU output (conv input) + norm input
    if primitive in _DILATION:
        return c_in * s_in * BYTES + c_in * s_out * BYTES + norm  # + depthwise output
    if primitive == "max_pool":
        return c_out * s_out * INDEX_BYTES
    if primitive == "identity" and stride == 2:
        return c_in * s_in * BYTES + norm
    return 0  # avg_pool (its input only), identity, zero


def candidate_flops(primitive: str, c_in: int, c_out: int, spatial_shape: Sequence[int], stride: int = 1) -> int:
    """FLOPs per sample (2 per multiply-accumulate of every convolution; pools, norms and
    activations ignored, as in :mod:`nasengine.ops`)."""
    s_out = _prod(_out(spatial_shape, stride))
    if primitive == "conv":
        return 2 * c_in * c_out * 27 * s_out
    if primitive in _DILATION:
        return 2 * s_out * (c_in * 27 + c_in * c_out)
    if primitive == "identity" and stride == 2:
        return 2 * c_in * (c_out // 2 + (c_out - c_out // 2)) * s_out
    return 0


def candidate_parameters(primitive: str, c_in: int, c_out: int, stride: int = 1) -> int:
    """Trainable parameters of candidate ``primitive`` (convs without bias, affine norms)."""
    if primitive == "conv":
        return c_in * c_out * 27 + 2 * c_out
    if primitive in _DILATION:
        return c_in * 27 + c_in * c_out + 2 * c_out
    if primitive == "identity" and stride == 2:
        return c_in * c_out + 2 * c_out
    return 0


def preprocess_memory(kind: str, c_in: int, c_out: int, spatial_shape: Sequence[int]) -> int:
    """Bytes beyond the input saved by a preprocessing op (``same``, ``down`` or ``up``)."""
    s = _prod(spatial_shape)
    if kind == "down":
        return candidate_memory("identity", c_in, c_out, spatial_shape, 2)
    return c_in * s * BYTES + (c_out * s + 2 * c_out) * BYTES  # same and up (conv before upsampling)


def preprocess_flops(kind: str, c_in: int, c_out: int, spatial_shape: Sequence[int]) -> int:
    if kind == "down":
        return candidate_flops("identity", c_in, c_out, spatial_shape, 2)
    return 2 * c_in * c_out * _prod(spatial_shape)


def preprocess_parameters(kind: str, c_in: int, c_out: int) -> int:
    return c_in * c_out + 2 * c_out


# ---- registration -----------------------------------------------------------------------------
def _register(spec: OpSpec) -> None:
    """``register_op``, tolerating this module being imported a second time (a reload builds
    new function objects, so the specs differ though the op is the same)."""
    existing = OPS.get(spec.name)
    if existing is not None and existing.description == spec.description and existing.kind == spec.kind:
        return
    register_op(spec)


def _candidate_spec(primitive: str, stride: int) -> OpSpec:
    describe = {
        "conv": "LeakyReLU, 3x3x3 conv, InstanceNorm",
        "max_pool": "3x3x3 max pooling",
        "avg_pool": "3x3x3 average pooling (padding not counted)",
        "identity": "factorized reduce: LeakyReLU, two strided 1x1x1 convs, concat, InstanceNorm",
        "zero": "zero: no connection (never built into a discrete network)",
    }
    if primitive in _DILATION:
        text = f"LeakyReLU, depthwise 3x3x3 conv dilation {_DILATION[primitive]}, 1x1x1 conv, InstanceNorm"
    else:
        text = describe[primitive]
    strided = stride == 2 and primitive != "zero"
    return OpSpec(
        name=op_name(primitive, stride),
        kind="resample" if strided else "cell",
        build=lambda c_in, c_out, **_: build_candidate(primitive, c_in, c_out, 2 if strided else 1),
        memory=lambda c_in, c_out, spatial_shape, **_: candidate_memory(primitive, c_in, c_out, spatial_shape, 2 if strided else 1),
        flops=lambda c_in, c_out, spatial_shape, **_: candidate_flops(primitive, c_in, c_out, spatial_shape, 2 if strided else 1),
        level_delta=(lambda **_: 1) if strided else (lambda **_: 0),
        same_channels=primitive in ("max_pool", "avg_pool", "zero"),
        saves_input=(SAVES_INPUT_STRIDED if strided else SAVES_INPUT)[primitive],
        description=("SCNAS, stride 2: " if strided else "SCNAS: ") + text,
    )


def _macro_specs() -> list[OpSpec]:
    def prod(shape):
        return _prod(shape)

    return [
        OpSpec("scnas_stem", "stem", lambda c_in, c_out, **_: Stem(c_in, c_out),
               lambda c_in, c_out, spatial_shape, **_: (c_in * prod(spatial_shape) + c_out * prod(spatial_shape) + 2 * c_out) * BYTES,
               lambda c_in, c_out, spatial_shape, **_: 2 * c_in * c_out * 27 * prod(spatial_shape),
               description="SCNAS stem cell: 3x3x3 conv, InstanceNorm (memory includes the image, which the conv saves)"),
        OpSpec("scnas_pre", "cell", lambda c_in, c_out, **_: Preprocess(c_in, c_out),
               lambda c_in, c_out, spatial_shape, **_: preprocess_memory("same", c_in, c_out, spatial_shape),
               lambda c_in, c_out, spatial_shape, **_: preprocess_flops("same", c_in, c_out, spatial_shape),
               saves_input=True, description="SCNAS cell-input preprocessing: LeakyReLU, 1x1x1 conv, InstanceNorm"),
        OpSpec("scnas_pre_down", "resample", lambda c_in, c_out, **_: PreprocessDown(c_in, c_out),
               lambda c_in, c_out, spatial_shape, **_: preprocess_memory("down", c_in, c_out, spatial_shape),
               lambda c_in, c_out, spatial_shape, **_: preprocess_flops("down", c_in, c_out, spatial_shape),
               level_delta=lambda **_: 1, saves_input=True,
               description="SCNAS preprocessing of a finer cell input: factorized reduce (LeakyReLU)"),
        OpSpec("scnas_pre_up", "resample", lambda c_in, c_out, **_: PreprocessUp(c_in, c_out),
               lambda c_in, c_out, spatial_shape, **_: preprocess_memory("up", c_in, c_out, spatial_shape),
               lambda c_in, c_out, spatial_shape, **_: preprocess_flops("up", c_in, c_out, spatial_shape),
               level_delta=lambda **_: -1, saves_input=True,
               description="SCNAS expansion-cell pre-upsampling: LeakyReLU, 1x1x1 conv, InstanceNorm, trilinear x2"),
        OpSpec("scnas_out", "head", lambda c_in, c_out, **_: OutCell(c_in, c_out),
               lambda c_in, c_out, spatial_shape, **_: c_in * prod(spatial_shape) * BYTES,
               lambda c_in, c_out, spatial_shape, **_: 2 * c_in * c_out * prod(spatial_shape),
               saves_input=True, description="SCNAS out cell: LeakyReLU, 1x1x1 conv with bias to class logits"),
    ]


def register_scnas_ops() -> None:
    """Register every SCNAS op (idempotent); called at import."""
    for primitive in PRIMITIVES:
        if primitive != "identity":  # the stride-1 identity is the shared ``skip``
            _register(_candidate_spec(primitive, 1))
        if primitive != "zero":
            _register(_candidate_spec(primitive, 2))
    for spec in _macro_specs():
        _register(spec)


register_scnas_ops()
