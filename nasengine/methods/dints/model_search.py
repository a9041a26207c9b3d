"""The DiNTS supernet (sec. 3.1-3.3): multi-resolution stems, L layers of super nodes whose
D feature nodes sum their candidate input edges, and the output head.

Speed and memory (the reason this is not MONAI's code):

- Eq. 1 sums over all M patterns of the sum of the selected edges' cell outputs. Swapping the
  sums, ``s_i = sum_e (sum_j eta_j cp_j(e)) c_e(s_{i-1}) = sum_e m_e c_e(s_{i-1})`` with the
  edge marginal ``m_e = p_e / (1 - prod(1 - p))`` (:func:`losses.edge_marginals`): each edge
  is computed once per layer and no pattern-level tensor is ever formed.
- The marginal and the op weights are folded together, ``w_{e,n} = m_e alpha_{e,n}``, and each
  ``w_{e,n}`` is folded into the affine InstanceNorm of op n (``w (gamma xhat + beta)``), so no
  weighted copy of any op output is saved for backward.
- All edges into one feature node share one ReLU and run as grouped convolutions (one conv call
  per kernel shape for the 2-3 edges of the node) and one InstanceNorm over all their op
  outputs; the weighted sum is a reshape + sum. Grouped convolutions also take oneDNN's fast
  path on CPU at batch size 1 (PyTorch's reference kernel is several times slower there).
- CPU kernel selection: 3x1x1 kernels get a no-op dilation (:func:`fast_dilation`) so that they
  leave the slow reference path; on 2x2x2 features the 3x3x3 convs run per edge (im2col beats
  oneDNN there); the head's full-resolution convs split batch-1 volumes into two halo slabs
  (:class:`nasengine.ops.operations.ReLUConvNorm`).

Choices where the paper is open: edge order and pattern numbering (see :mod:`.space`); the head
(MONAI's, see :mod:`.genotypes`); instance norms are affine; ``alpha ~ N(1, 0.01)`` and
``p_e`` logits ``~ N(0, 0.01)`` read 0.01 as the standard deviation (as MONAI does).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...ops import DINTS_CELL_OPS, OPS
from ...ops.operations import P3D_KERNELS, fast_dilation, FactorizedIncrease, FactorizedReduce, HeadOut, HeadUp, Stem
from . import losses
from .decode import Decoded
from .decode import decode as decode_arrays
from .genotypes import continuous_genotype, discrete_genotype
from .space import SearchSpace, get_space

__all__ = ["MixedNode", "DiNTSSupernet", "level_channels"]

_P3D = tuple(P3D_KERNELS.values())  # order of DINTS_CELL_OPS[2:]
assert tuple(P3D_KERNELS) == DINTS_CELL_OPS[2:]


def level_channels(stem_filters: int, num_depths: int) -> list[int]:
    """Channels of lattice level ``d`` (at 1/2^(d+1) resolution): ``stem_filters * 2^(d+1)``."""
    return [stem_filters * 2 ** (d + 1) for d in range(num_depths)]


def _conv_weight(c_out: int, c_in: int, kernel) -> nn.Parameter:
    w = torch.empty(c_out, c_in, *kernel)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # nn.Conv3d's default, per edge (fan_in = c_in*k)
    return nn.Parameter(w)


class MixedNode(nn.Module):
    """All candidate edges into one feature node of one layer, each with all N cell ops.

    Args:
        space: the search space.
        level: the target level of this node.
        channels: channels per level.

    Forward: ``xs`` = the source features of the node's edges (in edge order, each at its own
    level), ``w`` = ``[n_edges, N]`` combined weights ``m_e * alpha_{e,n}``. Returns
    ``[B, c, *S]`` = ``sum_e sum_n w_{e,n} op_n(pre_e(x_e))``.
    """

    def __init__(self, space: SearchSpace, level: int, channels: list[int]):
        super().__init__()
        self.edge_range = space.edges_into(level)
        c = channels[level]
        self.c = c
        self.n = n = len(self.edge_range)
        pre = []
        for e in self.edge_range:
            edge = space.edges[e]
            if edge.resample == "down":
                pre.append(FactorizedReduce(channels[edge.source], c))
            elif edge.resample == "up":
                pre.append(FactorizedIncrease(channels[edge.source], c))
            else:
                pre.append(nn.Identity())
        self.pre = nn.ModuleList(pre)
        # weights of edge k live in rows k*c:(k+1)*c of each grouped conv
        self.conv3 = nn.Parameter(torch.cat([_conv_weight(c, c, (3, 3, 3)) for _ in range(n)]))
        self.p3d_a = nn.ParameterList([torch.cat([_conv_weight(c, c, k0) for _ in range(n)]) for k0, _ in _P3D])
        self.p3d_b = nn.ParameterList([torch.cat([_conv_weight(c, c, k1) for _ in range(n)]) for _, k1 in _P3D])
        # InstanceNorm affine of (op, edge): [4 ops, n edges, c]
        self.gamma = nn.Parameter(torch.ones(4, n, c))
        self.beta = nn.Parameter(torch.zeros(4, n, c))
        self.channels_last = False  # set by the supernet

    def forward(self, xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        n, c = self.n, self.c
        x = torch.cat([p(t) for p, t in zip(self.pre, xs)], dim=1)  # [B, n*c, *S]
        if self.channels_last:  # oneDNN's channels-last grouped convs are 2-4x faster on CPU
            x = x.contiguous(memory_format=torch.channels_last_3d)
        r = F.relu(x)
        if x.device.type == "cpu" and math.prod(x.shape[2:]) <= 8:
            # 2x2x2 features with many channels: PyTorch's im2col path beats oneDNN's grouped conv
            ys = [torch.cat([F.conv3d(r[:, k * c:(k + 1) * c], self.conv3[k * c:(k + 1) * c], padding=1)
                             for k in range(n)], dim=1)]
        else:
            ys = [F.conv3d(r, self.conv3, padding=1, groups=n)]
        for (k0, k1), wa, wb in zip(_P3D, self.p3d_a, self.p3d_b):
            mid = F.conv3d(r, wa, padding=tuple(k // 2 for k in k0), groups=n)
            ys.append(F.conv3d(mid, wb, padding=tuple(k // 2 for k in k1), dilation=fast_dilation(k1), groups=n))
        y = torch.cat(ys, dim=1)  # [B, 4*n*c, *S]: op-major, then edge, then channel
        if self.channels_last:  # GroupNorm is slow on channels-last: normalise a contiguous copy
            y = y.contiguous()
        scale = w[:, 1:].t().unsqueeze(-1)  # [4, n, 1]
        y = F.group_norm(y, 4 * n * c, (self.gamma * scale).reshape(-1), (self.beta * scale).reshape(-1))  # instance norm
        b, s = x.shape[0], x.shape[2:]
        out = y.view(b, 4 * n, c, *s).sum(1)
        skip = (x.view(b, n, c, *s) * w[:, 0].view(1, n, 1, 1, 1, 1)).sum(1)
        return out + skip

    def edge_output(self, k: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Reference path for edge ``k`` alone, op by op (tests and eq. 1 checks).

        ``w``: ``[N]`` op weights. Returns ``sum_n w_n op_n(pre_k(x))``.
        """
        c = self.c
        x = self.pre[k](x)
        rows = slice(k * c, (k + 1) * c)
        r = F.relu(x)
        outs = [F.conv3d(r, self.conv3[rows], padding=1)]
        for (k0, k1), wa, wb in zip(_P3D, self.p3d_a, self.p3d_b):
            mid = F.conv3d(r, wa[rows], padding=tuple(q // 2 for q in k0))
            outs.append(F.conv3d(mid, wb[rows], padding=tuple(q // 2 for q in k1)))
        total = w[0] * x
        for o, y in enumerate(outs):
            total = total + w[o + 1] * F.instance_norm(y, weight=self.gamma[o, k], bias=self.beta[o, k])
        return total


class DiNTSSupernet(nn.Module):
    """The searchable network: ``SearchableNetwork`` of the training contract.

    Args:
        in_channels: image channels; out_channels: classes (logits).
        num_layers: L; num_depths: D; stem_filters: filters at full resolution.
        op_costs: ``[E, N]`` memory cost of each op on each edge, and edge_costs ``[E]`` of the
            resampling before the cell (bytes, used by the memory loss; zeros switch it off).
        sigma, topology_weight: eq. 10 budget and eq. 11 lambda.
        alpha_init, edge_init: ``(mean, std)`` of the Gaussian initialisations.

    Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, S divisible by 2^D.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        num_depths: int,
        stem_filters: int,
        *,
        op_costs=None,
        edge_costs=None,
        sigma: float = 0.8,
        topology_weight: float = 0.001,
        alpha_init: tuple[float, float] = (1.0, 0.01),
        edge_init: tuple[float, float] = (0.0, 0.01),
        channels_last: bool = False,
        genotype_stem_filters: int | None = None,
        genotype_meta: dict | None = None,
        genotype_patch_size: list[int] | None = None,
    ):
        super().__init__()
        self.space = space = get_space(num_depths)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.L, self.D, self.N = num_layers, num_depths, len(DINTS_CELL_OPS)
        self.stem_filters = stem_filters
        self.channels = ch = level_channels(stem_filters, num_depths)
        self.sigma, self.topology_weight = float(sigma), float(topology_weight)
        self.channels_last = channels_last
        self.genotype_stem_filters = int(genotype_stem_filters or stem_filters)
        self.genotype_meta = dict(genotype_meta or {})
        self.genotype_patch_size = list(genotype_patch_size) if genotype_patch_size else None
        self.stems = nn.ModuleList(Stem(in_channels, ch[d], 2 ** (d + 1)) for d in range(num_depths))
        self.layers = nn.ModuleList(
            nn.ModuleList(MixedNode(space, d, ch) for d in range(num_depths)) for _ in range(num_layers)
        )
        up_out = [stem_filters] + ch[:-1]
        self.head_up = nn.ModuleList(HeadUp(ch[d], up_out[d]) for d in range(num_depths))
        self.head_out = HeadOut(stem_filters, out_channels)
        # architecture parameters (sec. 4.1 initialisation)
        self.op_logits = nn.Parameter(torch.empty(num_layers, space.E, self.N).normal_(*alpha_init))
        self.edge_logits = nn.Parameter(torch.empty(num_layers, space.E).normal_(*edge_init))
        # constant tables
        self.register_buffer("cp", torch.from_numpy(space.cp).float(), persistent=False)
        self.register_buffer("f_in", torch.from_numpy(space.f_in_matrix), persistent=False)
        self.register_buffer("f_out", torch.from_numpy(space.f_out_matrix), persistent=False)
        if op_costs is None:
            op_costs = np.zeros((space.E, self.N))
        if edge_costs is None:
            edge_costs = np.zeros(space.E)
        if isinstance(op_costs, torch.Tensor):
            op_costs = op_costs.detach().cpu().numpy()
        if isinstance(edge_costs, torch.Tensor):
            edge_costs = edge_costs.detach().cpu().numpy()
        self.use_memory_loss = bool(np.asarray(op_costs).sum() > 0)  # no costs: no eq. 10
        self.register_buffer("op_costs", torch.as_tensor(op_costs, dtype=torch.float32), persistent=False)
        self.register_buffer("edge_costs", torch.as_tensor(edge_costs, dtype=torch.float32), persistent=False)
        for layer in self.layers:
            for node in layer:
                node.channels_last = channels_last

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
        edges = self.space.edges
        for i, layer in enumerate(self.layers):
            w = weights[i]
            feats = [
                node([feats[edges[e].source] for e in node.edge_range], w[node.edge_range.start : node.edge_range.stop])
                for node in layer
            ]
        t = self.head_up[-1](feats[-1])
        for d in range(self.D - 2, -1, -1):
            t = self.head_up[d](feats[d] + t)
        return self.head_out(t)

    # ---- architecture losses ---------------------------------------------------------------
    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        """Eq. 11's regularisers, already weighted (lambda on the topology loss); the search loop
        multiplies their sum by ``t / t_all``."""
        log_eta = self.log_eta()
        eta = log_eta.exp()
        alpha = F.softmax(self.op_logits, dim=-1)
        out = {
            "entropy_alpha": losses.entropy_alpha(self.op_logits),
            "entropy_eta": losses.entropy_eta(log_eta),
            "topology": self.topology_weight * losses.topology_loss(eta, self.f_in, self.f_out),
        }
        if self.use_memory_loss:
            out["memory"] = losses.memory_loss(
                losses.edge_marginals(self.edge_logits), alpha, self.op_costs, self.edge_costs, self.sigma
            )
        return out

    # ---- discrete views --------------------------------------------------------------------
    def arch_arrays(self):
        """``(edge_logits [L, E], op_logits [L, E, N])`` as float64 numpy arrays."""
        return (
            self.edge_logits.detach().double().cpu().numpy(),
            self.op_logits.detach().double().cpu().numpy(),
        )

    def decode_arrays(self) -> Decoded:
        """Eqs. 3-4 on the current architecture parameters (no gradients, numpy)."""
        b, a = self.arch_arrays()
        return decode_arrays(b, a, self.space)

    def decode(self) -> dict:
        """The most probable feasible discrete architecture as a genotype (retrain channels)."""
        dec = self.decode_arrays()
        with torch.no_grad():
            marg = losses.edge_marginals(self.edge_logits.detach().double()).cpu().numpy()
            alpha = F.softmax(self.op_logits.detach().double(), -1).cpu().numpy()
        doc = discrete_genotype(
            dec, self.space, in_channels=self.in_channels, out_channels=self.out_channels,
            stem_filters=self.genotype_stem_filters, marginals=marg, alpha=alpha, meta=self.genotype_meta,
        )
        if self.genotype_patch_size:
            from ...genotype import derive_figures

            doc["derived"] = derive_figures(doc, self.genotype_patch_size)
        return doc

    def snapshot(self) -> dict:
        """The continuous architecture (every candidate edge with ``p_e`` and op weights, the
        currently decoded topology marked) as a compact genotype for the dashboard."""
        dec = self.decode_arrays()
        with torch.no_grad():
            p = torch.sigmoid(self.edge_logits.detach().double()).cpu().numpy()
            alpha = F.softmax(self.op_logits.detach().double(), -1).cpu().numpy()
        return continuous_genotype(
            self.space, in_channels=self.in_channels, out_channels=self.out_channels,
            stem_filters=self.stem_filters, edge_probs=p, alpha=alpha, dec=dec, meta=self.genotype_meta,
        )
