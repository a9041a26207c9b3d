"""The DAST supernet: the shared lattice (:class:`nasengine.lattice.LatticeSupernet`: stems, L
layers of super nodes, head, edge and op logits, eqs. 2 and 5-10, the exact decode) over DAST's
three cell ops, with the transformer op's parameters on every node and genotype edge.

What DAST adds to the lattice:

- :class:`DASTNode`, the mixed node: each candidate edge computes ``skip``, ``conv_3x3x3`` and
  ``dast_transformer`` (built with the config's parameters) and sums them with the weights
  ``m_e alpha_{e,n}`` (eq. 1 through edge marginals, as the generic node).
- the memory term of the budget loss (eq. 10) uses op costs at each level's own shapes
  (:func:`.memory.op_cost_table`), so the transformer's grid-bound cost enters where it sits;
- genotypes carry the transformer parameters on every transformer edge, DAST's settings in
  ``meta``, and derived figures computed with them;
- :meth:`DASTSupernet.on_step` gives the live view its numbers: the memory ratio ``M_e / M_a``
  against the budget ``sigma`` and the transformer op weight per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...lattice import losses
from ...lattice.space import SearchSpace
from ...lattice.supernet import LatticeSupernet
from ...ops import get_op
from ...ops.operations import Identity
from .ops import DAST_CELL_OPS, TRANSFORMER

__all__ = ["DASTNode", "DASTSupernet", "with_transformer_params"]


class DASTNode(nn.Module):
    """All candidate edges into one feature node of one layer, each with DAST's three ops.

    Args:
        space: the lattice; level: the node's level; channels: channels per level;
        cell_ops: op names (op-logit order); op_params: ``{op name: params}`` for ``build``.

    Attributes:
        edge_range: the node's edge indices (contiguous).

    Forward: ``xs`` the source features of the node's edges (edge order), ``w`` ``[n_edges, N]``
    weights. Returns ``[B, c, *S]`` = ``sum_e sum_n w_{e,n} op_n(pre_e(x_e))``.
    """

    def __init__(self, space: SearchSpace, level: int, channels: Sequence[int], cell_ops: Sequence[str],
                 op_params: dict[str, dict[str, Any]]):
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
        self.ops = nn.ModuleList(
            nn.ModuleList(get_op(name).build(c, c, **op_params.get(name, {})) for name in cell_ops)
            for _ in self.edge_range)

    def edge_output(self, k: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Edge ``k`` alone: ``sum_n w_n op_n(pre_k(x))`` (``w``: ``[N]``)."""
        x = self.pre[k](x)
        total = w[0] * self.ops[k][0](x)
        for n in range(1, len(self.ops[k])):
            total = total + w[n] * self.ops[k][n](x)
        return total

    def forward(self, xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        total = self.edge_output(0, xs[0], w[0])
        for k in range(1, self.n):
            total = total + self.edge_output(k, xs[k], w[k])
        return total


def with_transformer_params(doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``params`` on every edge whose op is the transformer (in place; returned)."""
    for edge in doc["edges"]:
        if edge.get("op") == TRANSFORMER:
            edge["params"] = dict(params)
    return doc


class DASTSupernet(LatticeSupernet):
    """The searchable DAST network (``SearchableNetwork`` of the training contract).

    Args:
        in_channels, out_channels, num_layers, num_depths, stem_filters: as the lattice.
        transformer_params: the transformer op's parameters (``DASTConfig.transformer_params``).
        genotype_patch_size: when given, decoded genotypes carry ``derived`` figures there.
        **lattice: op_costs, edge_costs, sigma, topology_weight, alpha_init, edge_init,
            genotype_stem_filters, genotype_meta of :class:`LatticeSupernet`.

    Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, S divisible by 2^D.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, num_depths: int,
                 stem_filters: int, *, transformer_params: dict[str, Any],
                 genotype_patch_size: list[int] | None = None, **lattice):
        # read by make_node while the lattice constructs its layers
        self.transformer_params = dict(transformer_params)
        super().__init__(in_channels, out_channels, num_layers, num_depths, stem_filters,
                         cell_ops=DAST_CELL_OPS, method="dast", **lattice)
        self.dast_patch_size = list(genotype_patch_size) if genotype_patch_size else None
        self.transformer_index = DAST_CELL_OPS.index(TRANSFORMER)

    def make_node(self, level: int) -> DASTNode:
        return DASTNode(self.space, level, self.channels, self.cell_ops,
                        {TRANSFORMER: self.transformer_params})

    # ---- genotypes -------------------------------------------------------------------------
    def decode(self) -> dict[str, Any]:
        """The decoded architecture with the transformer parameters on its transformer edges
        and, with ``genotype_patch_size``, ``derived`` figures computed with them."""
        doc = with_transformer_params(super().decode(), self.transformer_params)
        doc["meta"]["transformer"] = dict(self.transformer_params)
        doc["meta"]["transformer_edges"] = [
            {"source": e["source"], "target": e["target"]} for e in doc["edges"] if e["op"] == TRANSFORMER]
        if self.dast_patch_size:
            from ...genotype import derive_figures

            doc["derived"] = derive_figures(doc, self.dast_patch_size)
        return doc

    def snapshot(self) -> dict[str, Any]:
        """The continuous architecture for the dashboard: every candidate edge with ``p_e`` and
        its ``op_weights`` (the transformer's weight shows where transformers sit)."""
        return with_transformer_params(super().snapshot(), self.transformer_params)

    # ---- live view -------------------------------------------------------------------------
    @torch.no_grad()
    def memory_ratio(self) -> float:
        """``M_e / M_a`` of eq. 10 at the current architecture (0 without op costs)."""
        if not self.use_memory_loss:
            return 0.0
        marg = losses.edge_marginals(self.edge_logits)
        alpha = F.softmax(self.op_logits, dim=-1)
        m_e = losses.expected_memory(marg, alpha, self.op_costs, self.edge_costs)
        m_a = losses.expected_memory(torch.ones_like(marg), alpha, self.op_costs, self.edge_costs)
        return float(m_e / m_a)

    @torch.no_grad()
    def transformer_weight_by_level(self) -> list[float]:
        """Per lattice level (absolute level d + 1 at index d): the mean over layers and the
        edges into that level of ``m_e * alpha_transformer`` (where transformers sit)."""
        w = self.edge_weights()[..., self.transformer_index]  # [L, E]
        out = []
        for d in range(self.D):
            r = self.space.edges_into(d)
            out.append(float(w[:, r.start:r.stop].mean()))
        return out

    def on_step(self, step: int, phase: str) -> dict[str, float]:
        """Step-event ``metrics``: ``memory_ratio`` (eq. 10's ``M_e / M_a``), ``memory_budget``
        (sigma) and ``transformer_level_<l>`` (absolute level l)."""
        out = {"memory_ratio": self.memory_ratio(), "memory_budget": self.sigma}
        for d, value in enumerate(self.transformer_weight_by_level()):
            out[f"transformer_level_{d + 1}"] = value
        return out
