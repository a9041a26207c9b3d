"""DAST's transformer op (Yang et al., sec. 3 "Transformer" and "Segmentation Attention").

One op maps a lattice node's features ``[B, C, h, w, d]`` to the same shape:

1. **Projector** (eq. 1, HR-NAS's convolutional projector): the features are resized
   (trilinear) to a fixed ``g x g x g`` grid, concatenated with a learnable 3-channel position
   map ``P`` (eq. 2: ``P[0, i, j, k] = i/g``, ``P[1] = j/g``, ``P[2] = k/g``, an
   ``nn.Parameter`` initialised to that map; the paper's ``i/h`` is taken on the grid the map
   lives on) and projected by a 1x1x1 conv (no bias) and a norm to ``T`` channels: ``T``
   tokens of dimension ``G = g^3``.
2. **Full transformer**: ``encoder_layers`` encoder layers (self-attention, FFN) over the
   ``T`` tokens give the memory; ``decoder_layers`` decoder layers (self-attention over
   learnable queries ``[T, G]``, cross-attention to the memory, FFN) give ``hs [B, T, G]``.
   Every attention has ``heads`` heads and no bias (HR-NAS).
3. **Segmentation attention** ``A`` (no residual): queries from ``hs`` (one per token, a
   ``G -> T`` linear), keys from the encoder memory seen per grid position (a ``T -> T``
   linear on ``memory^T [B, G, T]``); ``softmax`` over the ``G`` grid positions gives
   ``[B, heads, T, G]``, averaged over heads: the attention weights ``[B, T, G]`` (the
   paper's "512 x 4096 = 512 x 16^3"). They multiply ``hs`` element-wise (HR-NAS's
   ``feature * att``).
4. **Reverse projector**: 1x1x1 conv ``T -> C`` (no bias) and a norm on the grid, then a
   trilinear resize back to ``(h, w, d)``: the output has the input's shape at every lattice
   level, odd sizes included. With ``outer_residual`` the input is added (HR-NAS does; off by
   default because ``skip`` is its own op on the lattice).

Choices the paper leaves open, each an op parameter (and a DAST config field): encoder/decoder
depth (1 + 1, HR-NAS), FFN width (``ffn_multiplier x G``, HR-NAS 1), LayerNorm placement
(post-norm, HR-NAS; ``norm_first`` for pre-norm), projector norm (BatchNorm, HR-NAS;
``"instance"`` for the lattice's InstanceNorm), outer residual (off). No dropout (the paper
names none; HR-NAS's 0.1 would add random masks to every step and to the memory cost).

Every forward is plain tensor code (no data-dependent control flow), so ``torch.export`` and
ONNX trace it. With ``keep_attention`` set (see :mod:`.attention`), the forward also stores
the detached head-averaged weights as ``last_attention [B, T, G]``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops.operations import InstanceNorm

__all__ = ["TransformerOp", "MultiHeadAttention", "EncoderLayer", "DecoderLayer",
           "SegmentationAttention", "position_map", "check_heads", "PROJECTOR_NORMS"]

#: Norms the projector and reverse projector may use.
PROJECTOR_NORMS: tuple[str, ...] = ("batch", "instance")


def position_map(grid: int) -> torch.Tensor:
    """Eq. 2 on a ``grid^3`` grid: ``[1, 3, g, g, g]`` with channel 0 = ``i/g``, 1 = ``j/g``,
    2 = ``k/g`` (values in ``[0, 1)``)."""
    r = torch.arange(grid, dtype=torch.float32) / grid
    i, j, k = torch.meshgrid(r, r, r, indexing="ij")
    return torch.stack([i, j, k])[None]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, L, D] -> [B, heads, L, D/heads]`` as a contiguous copy (so the matmuls after it
    save exactly this tensor, which the memory cost counts)."""
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2).contiguous()


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with ``heads`` heads, bias-free projections (HR-NAS).

    Args:
        dim: model width D (``dim % heads == 0``); heads: number of heads.

    Shapes: ``forward(query [B, Lq, D], source [B, Lk, D]) -> [B, Lq, D]``.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        b, n, d = query.shape
        q = _heads(self.q(query) * self.scale, self.heads)
        k = _heads(self.k(source), self.heads)
        v = _heads(self.v(source), self.heads)
        weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # [B, h, Lq, Lk]
        mixed = (weights @ v).transpose(1, 2).reshape(b, n, d)
        return self.out(mixed)


class _FeedForward(nn.Module):
    """``Linear(D -> F) -> ReLU -> Linear(F -> D)``, bias-free (HR-NAS)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden, bias=False)
        self.linear2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))


class EncoderLayer(nn.Module):
    """Transformer encoder layer: self-attention and FFN, each with a residual and a
    LayerNorm (after the residual, or before the sublayer with ``norm_first``).

    Shapes: ``[B, T, D] -> [B, T, D]``.
    """

    def __init__(self, dim: int, heads: int, hidden: int, norm_first: bool):
        super().__init__()
        self.attn = MultiHeadAttention(dim, heads)
        self.ffn = _FeedForward(dim, hidden)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.attn(h, h)
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self.attn(x, x))
        return self.norm2(x + self.ffn(x))


class DecoderLayer(nn.Module):
    """Transformer decoder layer: self-attention over the queries, cross-attention to the
    encoder memory, FFN; residuals and LayerNorms as :class:`EncoderLayer`.

    Shapes: ``forward(y [B, T, D], memory [B, T, D]) -> [B, T, D]``.
    """

    def __init__(self, dim: int, heads: int, hidden: int, norm_first: bool):
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, heads)
        self.cross_attn = MultiHeadAttention(dim, heads)
        self.ffn = _FeedForward(dim, hidden)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.norm_first = norm_first

    def forward(self, y: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            h = self.norm1(y)
            y = y + self.self_attn(h, h)
            y = y + self.cross_attn(self.norm2(y), memory)
            return y + self.ffn(self.norm3(y))
        y = self.norm1(y + self.self_attn(y, y))
        y = self.norm2(y + self.cross_attn(y, memory))
        return self.norm3(y + self.ffn(y))


class SegmentationAttention(nn.Module):
    """DAST's ``A``: multi-head attention weights of each token over the grid, no values and
    no residual.

    Args:
        tokens: T; grid_voxels: G; heads: number of heads (``T % heads == 0``; width T).

    Shapes: ``forward(hs [B, T, G], memory [B, T, G]) -> [B, T, G]``: per token, the
    head-averaged softmax over the G grid positions (each row sums to 1).
    """

    def __init__(self, tokens: int, grid_voxels: int, heads: int):
        super().__init__()
        if tokens % heads:
            raise ValueError(f"{tokens} tokens are not divisible by {heads} heads")
        self.heads = heads
        self.scale = (tokens // heads) ** -0.5
        self.q = nn.Linear(grid_voxels, tokens, bias=False)  # a query per token, from its G values
        self.k = nn.Linear(tokens, tokens, bias=False)  # a key per grid position, from its T values

    def forward(self, hs: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q = _heads(self.q(hs) * self.scale, self.heads)  # [B, h, T, T/h]
        k = _heads(self.k(memory.transpose(1, 2).contiguous()), self.heads)  # [B, h, G, T/h]
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1).mean(1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return InstanceNorm(channels)
    raise ValueError(f"projector_norm must be one of {', '.join(PROJECTOR_NORMS)}, got {kind!r}")


class TransformerOp(nn.Module):
    """The DAST transformer cell op (see the module docstring).

    Args:
        c_in, c_out: channels (equal on the lattice; ``outer_residual`` needs them equal).
        tokens: T; grid: g (the grid has ``G = g^3`` voxels, the token dimension);
        heads: attention heads (``G % heads == 0`` and ``T % heads == 0``);
        encoder_layers, decoder_layers: depth (each >= 1: the paper's full transformer);
        ffn_multiplier: FFN width as a multiple of G; norm_first: pre-norm layers;
        projector_norm: ``"batch"`` or ``"instance"``; outer_residual: add the input.

    Attributes:
        keep_attention: when True, ``forward`` stores ``last_attention`` (detached
            ``[B, T, G]``); set by :func:`nasengine.methods.dast.attention.recording`.

    Shapes: ``[B, c_in, h, w, d] -> [B, c_out, h, w, d]`` for any sizes.
    """

    def __init__(self, c_in: int, c_out: int, *, tokens: int = 512, grid: int = 16, heads: int = 8,
                 encoder_layers: int = 1, decoder_layers: int = 1, ffn_multiplier: int = 1,
                 norm_first: bool = False, projector_norm: str = "batch",
                 outer_residual: bool = False):
        super().__init__()
        if min(tokens, grid, heads, encoder_layers, decoder_layers, ffn_multiplier) < 1:
            raise ValueError("tokens, grid, heads, layers and ffn_multiplier must all be >= 1")
        if outer_residual and c_in != c_out:
            raise ValueError(f"outer_residual needs c_in == c_out, got {c_in} and {c_out}")
        self.tokens, self.grid, self.grid_voxels = int(tokens), int(grid), int(grid) ** 3
        self.outer_residual = bool(outer_residual)
        g, t, dim = self.grid, self.tokens, self.grid_voxels
        self.position = nn.Parameter(position_map(g))
        self.project = nn.Conv3d(c_in + 3, t, 1, bias=False)
        self.project_norm = _norm(projector_norm, t)
        hidden = int(ffn_multiplier) * dim
        self.encoder = nn.ModuleList(EncoderLayer(dim, heads, hidden, norm_first) for _ in range(encoder_layers))
        self.queries = nn.Parameter(torch.empty(t, dim))
        nn.init.xavier_uniform_(self.queries)
        self.decoder = nn.ModuleList(DecoderLayer(dim, heads, hidden, norm_first) for _ in range(decoder_layers))
        self.attention = SegmentationAttention(t, dim, heads)
        self.reverse = nn.Conv3d(t, c_out, 1, bias=False)
        self.reverse_norm = _norm(projector_norm, c_out)
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g, t = self.grid, self.tokens
        z = F.interpolate(x, size=(g, g, g), mode="trilinear", align_corners=False)
        z = torch.cat([z, self.position.expand(b, -1, -1, -1, -1)], dim=1)
        memory = self.project_norm(self.project(z)).flatten(2)  # [B, T, G]
        for layer in self.encoder:
            memory = layer(memory)
        hs = self.queries.unsqueeze(0).repeat(b, 1, 1)  # [B, T, G], learnable queries
        for layer in self.decoder:
            hs = layer(hs, memory)
        att = self.attention(hs, memory)  # [B, T, G]
        if self.keep_attention:
            self.last_attention = att.detach()
        y = (hs * att).view(b, t, g, g, g)
        y = self.reverse_norm(self.reverse(y))
        y = F.interpolate(y, size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)
        return y + x if self.outer_residual else y


def check_heads(tokens: int, grid: int, heads: int) -> None:
    """``ValueError`` unless ``heads`` divides both the token dimension ``grid^3`` and ``tokens``."""
    if (grid**3) % heads or tokens % heads:
        raise ValueError(f"heads={heads} must divide tokens={tokens} and grid^3={grid**3}")

