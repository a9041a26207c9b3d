"""A searchable lattice network over any cell op list (DiNTS sec. 3.1-3.3; DAST reuses it).

:class:`LatticeSupernet` holds what every lattice method shares: the multi-resolution stems,
``L`` layers of super nodes (one mixed node per level), the head, the architecture parameters
(edge logits ``[L, E]``, op logits ``[L, E, N]``), the relaxation (eq. 1 through edge marginals,
see :mod:`.losses`), the regularisers of eqs. 5-10, the exact decode and the genotype views.
The mixed node is a hook (:meth:`LatticeSupernet.make_node`): the default
:class:`MixedLatticeNode` builds each registered op per edge and sums ``w_{e,n} op_n``; a method
may substitute a fused node for its own ops (DiNTS does) as long as it has the same interface.

Eq. 1 without patterns: ``s_i = sum_j eta_j sum_{e in j} c_e(s_{i-1}) = sum_e m_e c_e(s_{i-1})``
with the edge marginal ``m_e`` (:func:`.losses.edge_marginals`), so each edge is computed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..ops import get_op
from ..ops.operations import HeadOut, HeadUp, Identity, Stem
from . import losses
from .decode import Decoded
from .decode import decode as decode_arrays
from .genotypes import continuous_genotype, discrete_genotype
from .space import SearchSpace, get_space, level_channels

__all__ = ["MixedLatticeNode", "LatticeSupernet"]


class MixedLatticeNode(nn.Module):
    """All candidate edges into one feature node of one layer, each with every cell op.

    Args:
        space: the lattice; level: this node's (target) level; channels: channels per level;
        cell_ops: op names from the registry (each built ``c -> c`` at the node's channels).

    Attributes:
        edge_range: the node's edge indices (contiguous, :meth:`SearchSpace.edges_into`).

    Forward: ``xs`` = the source features of the node's edges (edge order, each at its own
    level), ``w`` = ``[n_edges, N]`` weights ``m_e * alpha_{e,n}``. Returns ``[B, c, *S]`` =
    ``sum_e sum_n w_{e,n} op_n(pre_e(x_e))``, ``pre_e`` the registry's ``down``/``up`` op on a
    cross-level edge.
    """

    def __init__(self, space: SearchSpace, level: int, channels: Sequence[int], cell_ops: Sequence[str]):
        super().__init__()
        self.edge_range = space.edges_into(level)
        c = channels[level]
        self.c, self.n = c, len(self.edge_range)
        pre = []
        for e in self.edge_range:
            edge = space.edges[e]
            pre.append(Identity() if edge.resample == "none"
                       else get_op(edge.resample).build(channels[edge.source], c))
        self.pre = nn.ModuleList(pre)
        self.ops = nn.ModuleList(nn.ModuleList(get_op(name).build(c, c) for name in cell_ops)
                                 for _ in self.edge_range)

    def edge_output(self, k: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Edge ``k`` alone: ``sum_n w_n op_n(pre_k(x))`` (``w``: ``[N]``)."""
        x = self.pre[k](x)
        total = None
        for n, op in enumerate(self.ops[k]):
            y = w[n] * op(x)
            total = y if total is None else total + y
        return total

    def forward(self, xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        total = self.edge_output(0, xs[0], w[0])
        for k in range(1, self.n):
            total = total + self.edge_output(k, xs[k], w[k])
        return total


class LatticeSupernet(nn.Module):
    """The searchable lattice network: ``SearchableNetwork`` of the training contract.

    Args:
        in_channels: image channels; out_channels: classes (logits).
        num_layers: L; num_depths: D; stem_filters: filters at full resolution.
        cell_ops: the N op names on every edge (op-logit order); method: the genotypes' ``method``.
        op_costs: ``[E, N]`` memory cost of each op on each edge, and edge_costs ``[E]`` of the
            resampling before the cell (bytes, for the memory loss of eq. 10; none or all zero
            switch it off), e.g. from :func:`nasengine.lattice.costs.op_cost_table`.
        sigma, topology_weight: eq. 10 budget and eq. 11 lambda.
        alpha_init, edge_init: ``(mean, std)`` of the Gaussian initialisations.
        genotype_stem_filters: full-resolution filters written into decoded genotypes (the
            retrain network; default ``stem_filters``); genotype_meta: extra ``meta`` entries;
            genotype_patch_size: when given, decoded genotypes carry ``derived`` figures there.
        checkpoint_layers: activation checkpointing per layer: in a forward with gradients each
            layer keeps only its inputs (the D features and its edge weights) and is rerun in
            backward (``torch.utils.checkpoint``, non-reentrant). Costs about one more forward.

    Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, S divisible by 2^D.

    Construction order (stems, layers, head, op logits, edge logits) fixes the random draws, so a
    seeded network is reproducible.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        num_depths: int,
        stem_filters: int,
        *,
        cell_ops: Sequence[str],
        method: str,
        op_costs=None,
        edge_costs=None,
        sigma: float = 0.8,
        topology_weight: float = 0.001,
        alpha_init: tuple[float, float] = (1.0, 0.01),
        edge_init: tuple[float, float] = (0.0, 0.01),
        genotype_stem_filters: int | None = None,
        genotype_meta: dict | None = None,
        genotype_patch_size: list[int] | None = None,
        checkpoint_layers: bool = False,
    ):
        super().__init__()
        self.checkpoint_layers = bool(checkpoint_layers)
        self.space = space = get_space(num_depths)
        self.cell_ops = tuple(cell_ops)
        self.method = method
        self.in_channels, self.out_channels = in_channels, out_channels
        self.L, self.D, self.N = num_layers, num_depths, len(self.cell_ops)
        self.stem_filters = stem_filters
        self.channels = ch = level_channels(stem_filters, num_depths)
        self.sigma, self.topology_weight = float(sigma), float(topology_weight)
        self.genotype_stem_filters = int(genotype_stem_filters or stem_filters)
        self.genotype_meta = dict(genotype_meta or {})
        self.genotype_patch_size = list(genotype_patch_size) if genotype_patch_size else None
        self.stems = nn.ModuleList(Stem(in_channels, ch[d], 2 ** (d + 1)) for d in range(num_depths))
        self.layers = nn.ModuleList(
            nn.ModuleList(self.make_node(d) for d in range(num_depths)) for _ in range(num_layers)
        )
        up_out = [stem_filters] + ch[:-1]
        self.head_up = nn.ModuleList(HeadUp(ch[d], up_out[d]) for d in range(num_depths))
        self.head_out = HeadOut(stem_filters, out_channels)
        self.op_logits = nn.Parameter(torch.empty(num_layers, space.E, self.N).normal_(*alpha_init))
        self.edge_logits = nn.Parameter(torch.empty(num_layers, space.E).normal_(*edge_init))
        self.register_buffer("cp", torch.from_numpy(space.cp).float(), persistent=False)
        self.register_buffer("f_in", torch.from_numpy(space.f_in_matrix), persistent=False)
        self.register_buffer("f_out", torch.from_numpy(space.f_out_matrix), persistent=False)
        op_costs = np.zeros((space.E, self.N)) if op_costs is None else _as_numpy(op_costs)
        edge_costs = np.zeros(space.E) if edge_costs is None else _as_numpy(edge_costs)
        if op_costs.shape != (space.E, self.N) or edge_costs.shape != (space.E,):
            raise ValueError(f"op_costs must be [E={space.E}, N={self.N}] and edge_costs [E], "
                             f"got {list(op_costs.shape)} and {list(edge_costs.shape)}")
        self.use_memory_loss = bool(op_costs.sum() > 0)  # no costs: no eq. 10
        self.register_buffer("op_costs", torch.as_tensor(op_costs, dtype=torch.float32), persistent=False)
        self.register_buffer("edge_costs", torch.as_tensor(edge_costs, dtype=torch.float32), persistent=False)

    def make_node(self, level: int) -> nn.Module:
        """The mixed node at ``level`` of one layer (override for a fused implementation).
        Called during construction, after ``space``, ``channels`` and ``cell_ops`` are set."""
        return MixedLatticeNode(self.space, level, self.channels, self.cell_ops)

    # ---- parameters ------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """``[op_logits (alpha, [L, E, N]), edge_logits (p_e before sigmoid, [L, E])]``."""
        return [self.op_logits, self.edge_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture ones."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # ---- relaxation ------------------------------------------------------------------------
    def edge_weights(self) -> torch.Tensor:
        """``[L, E, N]`` ``m_e^i * softmax(alpha^{i,e})_n``: the weight of op n of edge e in eq. 1."""
        return losses.edge_marginals(self.edge_logits).unsqueeze(-1) * F.softmax(self.op_logits, dim=-1)

    def log_eta(self) -> torch.Tensor:
        """``[L, M]`` log pattern probabilities (eq. 2)."""
        return losses.log_eta(self.edge_logits, self.cp)

    # ---- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [stem(x) for stem in self.stems]
        weights = self.edge_weights()
        for i in range(self.L):
            if self.checkpoint_layers and torch.is_grad_enabled():
                feats = list(checkpoint(self._layer_forward, i, weights[i], *feats, use_reentrant=False))
            else:
                feats = self._layer_forward(i, weights[i], *feats)
        t = self.head_up[-1](feats[-1])
        for d in range(self.D - 2, -1, -1):
            t = self.head_up[d](feats[d] + t)
        return self.head_out(t)

    def _layer_forward(self, i: int, w: torch.Tensor, *feats: torch.Tensor) -> list[torch.Tensor]:
        """Layer ``i``: the D feature nodes from the previous layer's ``feats`` (``w``: ``[E, N]``)."""
        edges = self.space.edges
        return [
            node([feats[edges[e].source] for e in node.edge_range], w[node.edge_range.start : node.edge_range.stop])
            for node in self.layers[i]
        ]

    # ---- architecture losses ---------------------------------------------------------------
    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        """Eqs. 5-10: ``entropy_alpha``, ``entropy_eta``, ``topology`` (already times lambda,
        ``topology_weight``) and, with op costs, ``memory``. The others are unweighted; eq. 11
        ramps all of them by ``t / t_all`` (the method's schedule asks the loop for that)."""
        log_eta = self.log_eta()
        eta = log_eta.exp()
        out = {
            "entropy_alpha": losses.entropy_alpha(self.op_logits),
            "entropy_eta": losses.entropy_eta(log_eta),
            "topology": self.topology_weight * losses.topology_loss(eta, self.f_in, self.f_out),
        }
        if self.use_memory_loss:
            out["memory"] = losses.memory_loss(
                losses.edge_marginals(self.edge_logits), F.softmax(self.op_logits, dim=-1),
                self.op_costs, self.edge_costs, self.sigma,
            )
        return out

    # ---- discrete views --------------------------------------------------------------------
    def arch_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(edge_logits [L, E], op_logits [L, E, N])`` as float64 numpy arrays."""
        return (
            self.edge_logits.detach().double().cpu().numpy(),
            self.op_logits.detach().double().cpu().numpy(),
        )

    def decode_arrays(self) -> Decoded:
        """Eqs. 3-4 on the current architecture parameters (no gradients, numpy)."""
        b, a = self.arch_arrays()
        return decode_arrays(b, a, self.space)

    def decode(self) -> dict[str, Any]:
        """The most probable feasible discrete architecture as a genotype (retrain channels)."""
        dec = self.decode_arrays()
        with torch.no_grad():
            marg = losses.edge_marginals(self.edge_logits.detach().double()).cpu().numpy()
            alpha = F.softmax(self.op_logits.detach().double(), -1).cpu().numpy()
        doc = discrete_genotype(
            dec, self.space, cell_ops=self.cell_ops, method=self.method,
            in_channels=self.in_channels, out_channels=self.out_channels,
            stem_filters=self.genotype_stem_filters, marginals=marg, alpha=alpha, meta=self.genotype_meta,
        )
        if self.genotype_patch_size:
            from ..genotype import derive_figures

            doc["derived"] = derive_figures(doc, self.genotype_patch_size)
        return doc

    def snapshot(self) -> dict[str, Any]:
        """The continuous architecture (every candidate edge with ``p_e`` and op weights, the
        currently decoded topology marked) as a compact genotype for the dashboard."""
        dec = self.decode_arrays()
        with torch.no_grad():
            p = torch.sigmoid(self.edge_logits.detach().double()).cpu().numpy()
            alpha = F.softmax(self.op_logits.detach().double(), -1).cpu().numpy()
        return continuous_genotype(
            self.space, cell_ops=self.cell_ops, method=self.method,
            in_channels=self.in_channels, out_channels=self.out_channels,
            stem_filters=self.stem_filters, edge_probs=p, alpha=alpha, dec=dec, meta=self.genotype_meta,
        )


def _as_numpy(costs) -> np.ndarray:
    if isinstance(costs, torch.Tensor):
        return costs.detach().cpu().double().numpy()
    return np.asarray(costs, dtype=np.float64)
