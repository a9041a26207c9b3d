"""Op modules of the shared vocabulary (the darts ``operations.py`` of VoxelSearch).

Every module takes and returns ``[B, C, X, Y, Z]`` float tensors. Cell ops keep the spatial
shape; resampling, stem and head ops change it by powers of two. All forwards are plain
tensor code without data-dependent Python control flow, so ``torch.export`` can trace them.

Conventions (DiNTS, sec. 3.2): a cell op is ReLU -> conv -> InstanceNorm (affine); ``skip`` is
the identity with no ReLU and no norm. Convolutions have no bias (the norm follows).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "Identity",
    "InstanceNorm",
    "ReLUConvNorm",
    "ConcatReLUConvNorm",
    "P3DReLUConvNorm",
    "FactorizedReduce",
    "FactorizedIncrease",
    "Stem",
    "HeadUp",
    "HeadOut",
    "P3D_KERNELS",
    "fast_dilation",
]

#: The two kernels of each pseudo-3D op (DiNTS sec. 3.2): first conv, then second conv.
P3D_KERNELS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "p3d_3x3x1": ((3, 3, 1), (1, 1, 3)),
    "p3d_3x1x3": ((3, 1, 3), (1, 3, 1)),
    "p3d_1x3x3": ((1, 3, 3), (3, 1, 1)),
}


def _pad(kernel: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(k // 2 for k in kernel)  # type: ignore[return-value]


def fast_dilation(kernel: tuple[int, int, int]) -> tuple[int, int, int]:
    """Dilation for ``kernel`` that changes nothing mathematically but speeds it up on CPU.

    PyTorch sends kernels whose last two sizes are 1 (e.g. 3x1x1) to its slow reference conv
    when single-threaded; a dilation on those unit axes (a no-op) makes it take oneDNN (5x
    faster measured). Other kernels get dilation 1.
    """
    if kernel[-1] == 1 and kernel[-2] == 1 and kernel[0] > 1:
        return (1, 2, 2)
    return (1, 1, 1)


class InstanceNorm(nn.GroupNorm):
    """Affine instance normalisation written as GroupNorm with one channel per group.

    The maths is that of ``nn.InstanceNorm3d(c, affine=True)`` (per sample and channel, eps 1e-5,
    biased variance), but PyTorch's fused GroupNorm kernel is 2-4x faster on CPU than
    ``instance_norm`` (which goes through batch_norm on a reshaped copy) and keeps channels-last.
    """

    def __init__(self, channels: int):
        super().__init__(channels, channels, eps=1e-5, affine=True)


def _norm(channels: int) -> InstanceNorm:
    return InstanceNorm(channels)


class Identity(nn.Module):
    """``skip``: returns its input unchanged (no ReLU, no norm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _to_slabs(x: torch.Tensor) -> torch.Tensor:
    """``[1, C, D, H, W] -> [2, C, D/2 + 2, H, W]``: the two halves along D with a 1-voxel halo."""
    h = x.shape[2] // 2
    xp = F.pad(x, (0, 0, 0, 0, 1, 1))
    return torch.cat([xp[:, :, : h + 2], xp[:, :, h:]], dim=0)


def _from_slabs(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_to_slabs` after a conv without depth padding: ``[2, C, D/2, H, W] -> [1, C, D, H, W]``."""
    return torch.cat([y[:1], y[1:]], dim=2)


class ReLUConvNorm(nn.Sequential):
    """ReLU -> Conv3d(kernel, 'same' padding, no bias) -> InstanceNorm3d(affine).

    Args:
        c_in: input channels.
        c_out: output channels.
        kernel: kernel size per axis, e.g. ``(3, 3, 3)``.
        split_batch1: on CPU at batch size 1, run a 3x3x3 conv on large volumes (depth >= 16)
            as two half-depth slabs (batch 2, 1-voxel halo). PyTorch sends batch-1 3D convs to
            a slow reference kernel (measured 8x slower forward + backward at 32^3 x 16
            channels); the result is identical. Memory: the ReLU output then holds
            ``1 + 4/depth`` times its usual bytes.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3), split_batch1: bool = False):
        super().__init__()
        self.add_module("act", nn.ReLU())
        self.add_module("conv", nn.Conv3d(c_in, c_out, kernel, padding=_pad(kernel), bias=False))
        self.add_module("norm", _norm(c_out))
        self.split_batch1 = bool(split_batch1) and tuple(kernel) == (3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # shape/device checks only: static under torch.export
        if self.split_batch1 and x.shape[0] == 1 and x.device.type == "cpu" and x.shape[2] >= 16 and x.shape[2] % 2 == 0:
            y = F.conv3d(self.act(_to_slabs(x)), self.conv.weight, padding=(0, 1, 1))
            return self.norm(_from_slabs(y))
        return self.norm(self.conv(self.act(x)))


class ConcatReLUConvNorm(nn.Module):
    """Multi-input op: channel concatenation of its inputs (in order) -> ReLU -> 1x1x1 conv -> InstanceNorm.

    Args:
        c_in: channels of each input, in the order the inputs come.
        c_out: output channels.

    Shapes: ``[[B, c_in[0], *S], [B, c_in[1], *S], ...] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: tuple[int, ...], c_out: int):
        super().__init__()
        self.in_channels = tuple(int(c) for c in c_in)
        self.block = ReLUConvNorm(sum(self.in_channels), c_out, (1, 1, 1))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.block(torch.cat(list(xs), dim=1))


class P3DReLUConvNorm(nn.Sequential):
    """Pseudo-3D op: ReLU -> conv(k0, c_in->c_in) -> conv(k1, c_in->c_out) -> InstanceNorm3d.

    ``k0``/``k1`` come from :data:`P3D_KERNELS` (e.g. 3x3x1 then 1x1x3), as in the paper.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int, name: str):
        super().__init__()
        k0, k1 = P3D_KERNELS[name]
        self.add_module("act", nn.ReLU())
        self.add_module("conv", nn.Conv3d(c_in, c_in, k0, padding=_pad(k0), bias=False))
        self.add_module("conv_1", nn.Conv3d(c_in, c_out, k1, padding=_pad(k1), dilation=fast_dilation(k1), bias=False))
        self.add_module("norm", _norm(c_out))


class FactorizedReduce(nn.Module):
    """``down``: 2x downsample (factorized reduce, as MONAI's DiNTS): ReLU, two strided 1x1x1
    convs on the even and the odd voxel grids, each giving half of the output channels, concat,
    InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/2]`` (every spatial size must be even).
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv_1 = nn.Conv3d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv3d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.norm = _norm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        out = torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:, 1:])], dim=1)
        return self.norm(out)


class FactorizedIncrease(nn.Module):
    """``up``: 2x trilinear upsample (align_corners=True) -> ReLU -> 1x1x1 conv -> InstanceNorm.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *2S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = _norm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="trilinear", align_corners=True)
        return self.norm(self.conv(self.act(x)))


class Stem(nn.Module):
    """Multi-resolution stem (DiNTS layer 0): the image is average-pooled by ``factor / 2``
    (when ``factor > 2``), then a 3x3x3 conv with stride 2 and an InstanceNorm give the
    features at ``1 / factor`` of the input resolution.

    Args:
        c_in: image channels.
        c_out: feature channels.
        factor: total downsampling factor, a power of two >= 2.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S/factor]``.
    """

    def __init__(self, c_in: int, c_out: int, factor: int = 2):
        super().__init__()
        self.pool_factor = int(factor) // 2
        self.conv = nn.Conv3d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.norm = _norm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_factor > 1:  # fixed at construction, not data-dependent
            x = F.avg_pool3d(x, self.pool_factor)
        return self.norm(self.conv(x))


class HeadUp(nn.Module):
    """Decoder step of the DiNTS head (as MONAI's ``stem_up``): ReLU -> 3x3x3 conv ->
    InstanceNorm -> 2x trilinear upsample.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *2S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.block = ReLUConvNorm(c_in, c_out, split_batch1=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.block(x), scale_factor=2.0, mode="trilinear", align_corners=True)


class HeadOut(nn.Module):
    """Output head (as MONAI's ``stem_finals``): ReLU -> 3x3x3 conv (c_in->c_in) ->
    InstanceNorm -> 1x1x1 conv with bias to ``c_out`` class logits.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.block = ReLUConvNorm(c_in, c_in, split_batch1=True)
        self.out = nn.Conv3d(c_in, c_out, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(x))
