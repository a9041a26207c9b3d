"""The UXNet supernet: SBBs with softmax-weighted layers (sec. 2.1) and MSSA nodes summing
sigmoid-gated transforms (eq. 1), with the polarisation term J (eq. 2).

Architecture parameters (initialised as in sec. 3.1):

- ``alpha_normal`` ``[n_sbb, 7]``, ``alpha_reduction`` ``[n_encoder_sbb, 3]``,
  ``alpha_expansion`` ``[n_decoder_sbb, 2]``: all 1, so softmax(alpha) is uniform;
- ``beta`` ``[n_gates]``: all 0, so sigma(beta) = 0.5, where J = 0 and dJ/dbeta = 0.

A layer computes ``y = sum_i softmax(alpha)_i O_i(x)``; a node ``N = sum_c g_c T_c(N_src)``
with ``g_c = sigma(beta_c)`` on a searchable connection and 1 on a constant one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ...genotype import derive_figures
from ...ops import OPS
from .derive import genotype_document
from .ops import ALIGN, EXPANSION_OPS, HEAD, NORMAL_OPS, REDUCTION_OPS, STEM
from .space import ENCODER_SBB, TRANSFORM, Connection, Space

__all__ = ["MixedLayer", "SearchableBlock", "UXNetSupernet", "polarisation", "gate_statistics", "HISTOGRAM_BINS"]

#: Bins of the sigma(beta) histogram sent with every step (``metrics.gate_hist_00`` ...).
HISTOGRAM_BINS = 10
#: A gate counts as polarised when sigma(beta) is within this distance of 0 or 1.
POLARISED_WITHIN = 0.1


def polarisation(gates: torch.Tensor) -> torch.Tensor:
    """J of eq. 2 averaged over the gates: ``mean(-(g - 0.5)^2)``, in [-0.25, 0].

    The paper writes J for one gate; we average over the gates (as FairDARTS' zero-one loss,
    ``-F.mse_loss(sigmoid, 0.5)``), so its weight does not depend on the number of connections.

    Shapes: ``gates`` ``[n]`` -> scalar.
    """
    return -((gates - 0.5) ** 2).mean()


def gate_statistics(gates: torch.Tensor, tau: float) -> dict[str, float]:
    """Numbers for the live view: quantiles of sigma(beta), the polarised and kept fractions,
    and a ``HISTOGRAM_BINS``-bin histogram over [0, 1] (fractions of the gates)."""
    g = gates.detach().double().cpu()
    q = torch.quantile(g, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    hist = torch.histc(g, bins=HISTOGRAM_BINS, min=0.0, max=1.0) / g.numel()
    out = {"gate_min": float(q[0]), "gate_q25": float(q[1]), "gate_median": float(q[2]),
           "gate_q75": float(q[3]), "gate_max": float(q[4]),
           "gate_polarised": float(((g <= POLARISED_WITHIN) | (g >= 1 - POLARISED_WITHIN)).double().mean()),
           "gate_kept": float((g >= tau).double().mean()),
           "polarisation_J": float(-((g - 0.5) ** 2).mean())}
    out.update({f"gate_hist_{i:02d}": float(v) for i, v in enumerate(hist)})
    return out


class MixedLayer(nn.Module):
    """One SBB layer: every candidate op, mixed by the given weights.

    Shapes: ``forward(x [B, c_in, *S], weights [n_ops]) -> [B, c_out, *S']``.
    """

    def __init__(self, op_names: tuple[str, ...], c_in: int, c_out: int):
        super().__init__()
        self.op_names = op_names
        self.candidates = nn.ModuleList(OPS[name].build(c_in, c_out) for name in op_names)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = None
        for i, op in enumerate(self.candidates):
            y = weights[i] * op(x)
            out = y if out is None else out + y
        return out


class SearchableBlock(nn.Module):
    """An SBB: a normal layer at the source's level, then a reduction layer (encoder) or an
    expansion layer (decoder) to the target's level and channels.

    Shapes: ``[B, c_in, *S] -> [B, c_out, *S / 2]`` (encoder) or ``*2S`` (decoder).
    """

    def __init__(self, c_in: int, c_out: int, encoder: bool):
        super().__init__()
        self.normal = MixedLayer(NORMAL_OPS, c_in, c_in)
        self.second = MixedLayer(REDUCTION_OPS if encoder else EXPANSION_OPS, c_in, c_out)

    def forward(self, x: torch.Tensor, normal_weights: torch.Tensor, second_weights: torch.Tensor) -> torch.Tensor:
        return self.second(self.normal(x, normal_weights), second_weights)


class UXNetSupernet(nn.Module):
    """Every candidate connection and op of a UXNet space.

    Args:
        in_channels / out_channels: image channels / classes.
        channels: C, the channels at level 0 (level l has C * 2^l).
        depth: D, the number of 2x downsamplings of the encoder (paper: 4).
        encoder_chain_constant: the encoder SBB chain has no gates (Fig. 3's constant connections).
        tau: the derivation threshold (decode, snapshots, the live "kept" fraction).
        genotype_meta: merged into the genotype's ``meta``.
        genotype_patch_size: the decoded genotype's ``derived`` figures are computed at this
            patch (none when None).

    Shapes: ``forward(x [B, in_channels, *S]) -> logits [B, out_channels, *S]``, S divisible by 2^D.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 16, depth: int = 4, *,
                 encoder_chain_constant: bool = True, tau: float = 0.75,
                 genotype_meta: dict[str, Any] | None = None, genotype_patch_size: list[int] | None = None):
        super().__init__()
        self.space = Space(depth, encoder_chain_constant)
        self.in_channels, self.out_channels, self.channels = int(in_channels), int(out_channels), int(channels)
        self.tau = float(tau)
        self.genotype_meta = dict(genotype_meta or {})
        self.genotype_patch_size = list(genotype_patch_size) if genotype_patch_size else None
        s = self.space
        self.stem = OPS[STEM].build(in_channels, channels)
        self.transforms = nn.ModuleList(self._transform(c) for c in s.connections)
        self.head = OPS[HEAD].build(channels, out_channels)
        self.alpha_normal = nn.Parameter(torch.ones(s.n_sbb, len(NORMAL_OPS)))
        self.alpha_reduction = nn.Parameter(torch.ones(s.n_encoder_sbb, len(REDUCTION_OPS)))
        self.alpha_expansion = nn.Parameter(torch.ones(s.n_decoder_sbb, len(EXPANSION_OPS)))
        self.beta = nn.Parameter(torch.zeros(s.n_gates))
        # wiring as plain tuples: node position -> ((connection, source position, gate | -1, sbb, second), ...)
        pos = {n: i for i, n in enumerate(s.nodes)}
        self._plan = tuple(
            (pos[n], tuple((c.index, pos[c.source], -1 if c.gate is None else c.gate,
                            -1 if c.sbb is None else c.sbb, -1 if c.second is None else c.second,
                            c.kind) for c in s.incoming[n]))
            for n in s.nodes[1:])
        self._output_pos = pos[s.output_node]

    def _transform(self, c: Connection) -> nn.Module:
        c_in, c_out = self.channels * 2**c.source.level, self.channels * 2**c.target.level
        if c.kind == TRANSFORM:
            return OPS[ALIGN].build(c_in, c_out, shift=c.shift)
        return SearchableBlock(c_in, c_out, encoder=c.kind == ENCODER_SBB)

    # ---- the loop's protocol ------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduction, self.alpha_expansion, self.beta]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def gates(self) -> torch.Tensor:
        """sigma(beta), ``[n_gates]``."""
        return torch.sigmoid(self.beta)

    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        """``{"polarisation": J}`` (eq. 2, averaged over the gates; beta only, not alpha)."""
        return {"polarisation": polarisation(self.gates())}

    def on_step(self, step: int, phase: str) -> dict[str, float]:
        """The gates' live statistics before each step (quantiles, polarised and kept
        fractions, J, histogram); a pure function of beta, so a resume repeats them."""
        return gate_statistics(self.gates(), self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wn = torch.softmax(self.alpha_normal, dim=-1)
        wr = torch.softmax(self.alpha_reduction, dim=-1)
        we = torch.softmax(self.alpha_expansion, dim=-1)
        g = torch.sigmoid(self.beta)
        feats: list[torch.Tensor | None] = [None] * len(self.space.nodes)
        feats[0] = self.stem(x)
        for p, incoming in self._plan:
            out = None
            for k, src, gate, sbb, second, kind in incoming:
                t = self.transforms[k]
                if kind == TRANSFORM:
                    y = t(feats[src])
                else:
                    y = t(feats[src], wn[sbb], (wr if kind == ENCODER_SBB else we)[second])
                if gate >= 0:
                    y = g[gate] * y
                out = y if out is None else out + y
            feats[p] = out
        return self.head(feats[self._output_pos])

    # ---- genotypes ------------------------------------------------------------------------
    @torch.no_grad()
    def _document(self, continuous: bool) -> dict[str, Any]:
        def rows(t: torch.Tensor) -> list[list[float]]:
            return torch.softmax(t.detach().double().cpu(), dim=-1).tolist()

        return genotype_document(
            self.space, gates=self.gates().detach().double().cpu().tolist(), tau=self.tau,
            normal_weights=rows(self.alpha_normal), reduction_weights=rows(self.alpha_reduction),
            expansion_weights=rows(self.alpha_expansion), in_channels=self.in_channels,
            out_channels=self.out_channels, channels=self.channels, continuous=continuous,
            meta=self.genotype_meta)

    def decode(self) -> dict[str, Any]:
        """The derived architecture (rules of :mod:`.derive`), with its ``derived`` figures."""
        doc = self._document(continuous=False)
        if self.genotype_patch_size:
            doc["derived"] = derive_figures(doc, self.genotype_patch_size)
        return doc

    def snapshot(self) -> dict[str, Any]:
        """Every connection with its gate (``gate`` and ``weight``), op weights and whether the
        current derivation keeps it (``selected``; nodes ``active``)."""
        return self._document(continuous=True)
