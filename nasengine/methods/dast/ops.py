"""DAST's cell ops and the transformer op's registry entry, with its exact memory and FLOPs.

``DAST_CELL_OPS`` (the paper's sec. 4.1: "skip-connection, convolution and transformer"), in
op-logit order: the shared ``skip`` and ``conv_3x3x3`` (DiNTS's ReLU-conv-InstanceNorm; the
P3D variants are not in DAST's set) and ``dast_transformer``, registered here at import.

Memory (``OpSpec.memory``): bytes autograd saves for backward per sample, counted from the
tensor shapes of :class:`.transformer.TransformerOp` (pinned against saved-tensor hooks by
the tests). With ``T`` tokens, ``G = g^3`` grid voxels (the token dimension), ``h`` heads,
``F = ffn_multiplier * G``, ``E`` encoder and ``D`` decoder layers, in floats:

- projector: the concatenation ``(C_in + 3) G`` (saved by the 1x1x1 conv) + the conv output
  ``T G`` (saved by the norm) + norm statistics;
- per encoder layer: ``8 T G + h T^2 + T F`` (layer input, q, k, v, head mix, residual sum
  and norm output, FFN hidden, second residual sum) + LayerNorm statistics ``4 T``;
- per decoder layer: ``14 T G + 2 h T^2 + T F`` + ``6 T``; the encoder memory ``T G`` once
  (the cross-attentions' keys and values);
- segmentation attention: ``(4 + h) T G + T^2`` (decoder output, transposed memory, keys,
  the ``h`` weight maps, averaged weights; queries ``T^2``);
- reverse projector: ``T G`` (the weighted tokens) + ``C_out G`` (conv output) + statistics.

The trilinear resizes save nothing, so the cost is set by the grid, not by the node's
resolution: it is resolution-aware in that it is evaluated at each lattice level's shapes,
where a conv's cost falls 8x per level and the transformer's does not (see the README for
what this means for where transformers go).

Eq. 3 of the paper, ``M = N x C x (l')^3`` with ``l' = 512``, is inconsistent as printed
(about 258 GB at C = 32). It is read by shapes (../shared/METHOD-NOTES.md sec. 4.3): ``l'^3``
is the grid ``G = 16^3`` (the "512 x 4096 = 512 x 16^3" attention map of sec. 4.4) and ``C``
the ``T = 512`` tokens, so ``M = N T G``; the exact count above replaces ``N ~ 15`` (about
42 ``T G`` at the paper's settings, see :func:`transformer_memory`).

FLOPs: 2 per multiply-accumulate of every convolution and matrix product (norms, softmax,
resizes ignored), as the shared table counts convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...ops import OpSpec, get_op, register_op
from .transformer import TransformerOp

__all__ = ["TRANSFORMER", "DAST_CELL_OPS", "TRANSFORMER_DEFAULTS", "transformer_memory",
           "transformer_flops", "TRANSFORMER_SPEC"]

BYTES = 4

#: Registered name of the transformer op.
TRANSFORMER = "dast_transformer"
#: DAST's cell ops in op-logit order.
DAST_CELL_OPS: tuple[str, ...] = ("skip", "conv_3x3x3", TRANSFORMER)
#: The op's parameters and their defaults (the ``paper`` preset's values).
TRANSFORMER_DEFAULTS: dict[str, object] = {
    "tokens": 512, "grid": 16, "heads": 8, "encoder_layers": 1, "decoder_layers": 1,
    "ffn_multiplier": 1, "norm_first": False, "projector_norm": "batch", "outer_residual": False,
}


def _params(params: dict) -> dict:
    unknown = set(params) - set(TRANSFORMER_DEFAULTS)
    if unknown:
        raise ValueError(f"{TRANSFORMER}: unknown parameter(s) {', '.join(sorted(unknown))}")
    return {**TRANSFORMER_DEFAULTS, **params}


def transformer_memory(c_in: int, c_out: int, spatial_shape: Sequence[int], **params) -> int:
    """Bytes autograd saves for backward per sample in one forward of :class:`TransformerOp`
    (training mode) at input ``[c_in, *spatial_shape]`` (module docstring for the terms).

    At the paper's settings (T = 512, g = 16, 8 heads, 1 + 1 layers, FFN = G) this is about
    ``42 T G`` floats, 352 MB per sample, at every level.
    """
    p = _params(params)
    t, g, h = int(p["tokens"]), int(p["grid"]) ** 3, int(p["heads"])
    f = int(p["ffn_multiplier"]) * g
    e, d = int(p["encoder_layers"]), int(p["decoder_layers"])
    stats = 4 if p["projector_norm"] == "batch" else 2  # BatchNorm also saves running stats
    projector = (c_in + 3) * g + t * g + stats * t
    encoder = e * (8 * t * g + h * t * t + t * f + 4 * t)
    decoder = d * (14 * t * g + 2 * h * t * t + t * f + 6 * t) + t * g
    attention = (4 + h) * t * g + t * t
    reverse = t * g + c_out * g + stats * c_out
    return int(BYTES * (projector + encoder + decoder + attention + reverse))


def _attention_flops(lq: int, lk: int, dim: int) -> int:
    return 2 * (2 * lq * dim * dim + 2 * lk * dim * dim + 2 * lq * lk * dim)


def transformer_flops(c_in: int, c_out: int, spatial_shape: Sequence[int], **params) -> int:
    """FLOPs per sample (2 per multiply-accumulate of every conv and matrix product)."""
    p = _params(params)
    t, g = int(p["tokens"]), int(p["grid"]) ** 3
    f = int(p["ffn_multiplier"]) * g
    ffn = 2 * 2 * t * g * f
    total = 2 * (c_in + 3) * t * g  # projector
    total += int(p["encoder_layers"]) * (_attention_flops(t, t, g) + ffn)
    total += int(p["decoder_layers"]) * (2 * _attention_flops(t, t, g) + ffn)
    total += 3 * 2 * t * g * t  # segmentation attention: queries, keys, weights
    total += 2 * t * c_out * g  # reverse projector
    return int(total)


def _build(c_in: int, c_out: int, **params) -> TransformerOp:
    return TransformerOp(c_in, c_out, **_params(params))


TRANSFORMER_SPEC = OpSpec(
    name=TRANSFORMER, kind="cell", build=_build, memory=transformer_memory,
    flops=transformer_flops,
    description="DAST transformer: resize to a fixed grid + position map, 1x1x1 projector to "
                "T tokens, encoder-decoder transformer with learnable queries, segmentation "
                "attention (no residual) multiplying the tokens, reverse projector, resize back",
)
register_op(TRANSFORMER_SPEC)

for _name in DAST_CELL_OPS:  # the shared ops DAST uses must exist (a renamed op fails here)
    get_op(_name)
