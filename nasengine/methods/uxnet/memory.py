"""Memory of a UXNet search and of its retraining.

Activation figures are the bytes autograd saves for backward in one training forward (fp32,
what the op costs of :mod:`.ops` count):

- search (exact): the supernet, every op of every SBB layer and every connection. Beyond the
  ops' own tensors, the weighted sum ``softmax(alpha)_i * O_i(x)`` keeps every ``O_i(x)`` (alpha's
  gradient needs it), the gate ``sigma(beta) * T(N)`` keeps ``T(N)``, a pooling reduction keeps
  the normal layer's output, and softmax / sigmoid keep their (tiny) outputs once per batch;
- retraining (a forecast: the derived network is not known before the search): every
  connection kept (the most a derivation can keep, whatever tau) with each SBB layer's op at the
  mean over its candidates (an untrained alpha's argmax). Memory adds up layer by layer, so the
  mean is computed exactly from the genotype figures of a few documents (one op everywhere).

``search_bytes`` / ``retrain_bytes`` add weights, gradients and the two Adam moments (fp32).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ...genotype import derive_figures
from ...ops import OPS
from ..base import MemoryEstimate
from .derive import genotype_document
from .ops import ALIGN, BYTES, EXPANSION_OPS, HEAD, NORMAL_OPS, REDUCTION_OPS, STEM
from .space import ENCODER_SBB, TRANSFORM, Space

__all__ = ["supernet_activation_bytes", "retrain_activation_bytes", "full_genotype", "estimate_memory"]


def _shape(patch: Sequence[int], level: int) -> tuple[int, ...]:
    return tuple(int(s) // 2**level for s in patch)


def supernet_activation_bytes(in_channels: int, out_channels: int, channels: int, depth: int,
                              patch: Sequence[int], batch: int, encoder_chain_constant: bool = True) -> int:
    """Bytes saved in one training forward of :class:`~.supernet.UXNetSupernet` on a batch of
    ``batch`` patches of ``patch`` (exact; tests hold it to saved-tensor hooks)."""
    space = Space(depth, encoder_chain_constant)
    s0 = _shape(patch, 0)
    per_sample = OPS[STEM].memory(in_channels, channels, s0) + OPS[HEAD].memory(channels, out_channels, s0)
    for c in space.connections:
        src, tgt = _shape(patch, c.source.level), _shape(patch, c.target.level)
        c_in, c_out = channels * 2**c.source.level, channels * 2**c.target.level
        if c.kind == TRANSFORM:
            per_sample += OPS[ALIGN].memory(c_in, c_out, src, shift=c.shift)
        else:
            seconds = REDUCTION_OPS if c.kind == ENCODER_SBB else EXPANSION_OPS
            per_sample += sum(OPS[op].memory(c_in, c_in, src) + c_in * math.prod(src) * BYTES for op in NORMAL_OPS)
            per_sample += sum(OPS[op].memory(c_in, c_out, src) + c_out * math.prod(tgt) * BYTES for op in seconds)
            if any(OPS[op].saves_input for op in seconds):  # the normal layer's output, once
                per_sample += c_in * math.prod(src) * BYTES
        if c.gated:
            per_sample += c_out * math.prod(tgt) * BYTES
    arch = space.n_sbb * len(NORMAL_OPS) + space.n_encoder_sbb * len(REDUCTION_OPS) \
        + space.n_decoder_sbb * len(EXPANSION_OPS) + space.n_gates
    return int(batch) * int(per_sample) + arch * BYTES


def full_genotype(in_channels: int, out_channels: int, channels: int, depth: int, *,
                  encoder_chain_constant: bool = True, normal: int = 0, reduction: int = 0,
                  expansion: int = 0) -> dict:
    """The genotype that keeps every connection, with one op index everywhere per layer kind."""
    space = Space(depth, encoder_chain_constant)

    def one_hot(n: int, k: int) -> list[float]:
        return [1.0 if i == k else 0.0 for i in range(n)]

    return genotype_document(
        space, gates=[1.0] * space.n_gates, tau=0.0,
        normal_weights=[one_hot(len(NORMAL_OPS), normal)] * space.n_sbb,
        reduction_weights=[one_hot(len(REDUCTION_OPS), reduction)] * space.n_encoder_sbb,
        expansion_weights=[one_hot(len(EXPANSION_OPS), expansion)] * space.n_decoder_sbb,
        in_channels=in_channels, out_channels=out_channels, channels=channels)


def retrain_activation_bytes(in_channels: int, out_channels: int, channels: int, depth: int,
                             patch: Sequence[int], batch: int, encoder_chain_constant: bool = True) -> int:
    """Forecast of the retrained network's saved bytes: every connection kept, each layer's op
    at the mean over its candidates (see the module docstring)."""
    def per_sample(**ops: int) -> int:
        doc = full_genotype(in_channels, out_channels, channels, depth,
                            encoder_chain_constant=encoder_chain_constant, **ops)
        return derive_figures(doc, list(patch))["memory_bytes"]

    base = per_sample()
    mean = base
    for kind, n in (("normal", len(NORMAL_OPS)), ("reduction", len(REDUCTION_OPS)), ("expansion", len(EXPANSION_OPS))):
        mean += sum(per_sample(**{kind: k}) - base for k in range(n)) / n
    return int(round(int(batch) * mean))


def _parameters(in_channels: int, out_channels: int, channels: int, depth: int, encoder_chain_constant: bool) -> tuple[int, int]:
    """(supernet parameters, parameters of the full network at the first op), counted on the meta device."""
    from ...genotype import GenotypeNetwork
    from .supernet import UXNetSupernet

    with torch.device("meta"):
        supernet = UXNetSupernet(in_channels, out_channels, channels, depth, encoder_chain_constant=encoder_chain_constant)
        network = GenotypeNetwork(full_genotype(in_channels, out_channels, channels, depth,
                                                encoder_chain_constant=encoder_chain_constant))
    return sum(p.numel() for p in supernet.parameters()), sum(p.numel() for p in network.parameters())


def estimate_memory(config, in_channels: int, out_channels: int) -> MemoryEstimate:
    """Memory to search and to retrain with ``config`` (a :class:`~.config.UXNetConfig`)."""
    patch = [int(s) for s in config.patch_size]
    retrain_patch = [int(s) for s in config.retrain_patch_size]
    b, rb = int(config.batch_size), int(config.retrain_batch_size)
    chain = bool(config.encoder_chain_constant)
    search_act = supernet_activation_bytes(in_channels, out_channels, config.channels, config.depth, patch, b, chain)
    retrain_act = retrain_activation_bytes(in_channels, out_channels, config.channels, config.depth, retrain_patch, rb, chain)
    search_params, retrain_params = _parameters(in_channels, out_channels, config.channels, config.depth, chain)
    copies = 4  # weights, gradients, two Adam moments
    details = {
        "search_activation_bytes": int(search_act),
        "retrain_activation_bytes": int(retrain_act),
        "search_parameters": int(search_params),
        "retrain_parameters_full": int(retrain_params),
        "search_batch_size": b,
        "retrain_batch_size": rb,
        "patch_size": patch,
        "retrain_patch_size": retrain_patch,
        "search_estimate": "exact: the supernet (every op and connection, the weighted sums and gates)",
        "retrain_estimate": "forecast: every connection kept, each SBB layer at its candidates' mean op",
    }
    return MemoryEstimate(search_bytes=int(search_act + copies * search_params * BYTES),
                          retrain_bytes=int(retrain_act + copies * retrain_params * BYTES), details=details)
