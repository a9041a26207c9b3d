"""The DiNTS supernet (sec. 3.1-3.3): the shared lattice network
(:class:`nasengine.lattice.supernet.LatticeSupernet`: stems, L layers of super nodes, head,
architecture parameters, losses, decode) with DiNTS's five cell ops in a fused mixed node.

Speed and memory (the reason this is not MONAI's code):

- Eq. 1 sums over all M patterns of the sum of the selected edges' cell outputs. Swapping the
  sums, ``s_i = sum_e (sum_j eta_j cp_j(e)) c_e(s_{i-1}) = sum_e m_e c_e(s_{i-1})`` with the
  edge marginal ``m_e = p_e / (1 - prod(1 - p))`` (:func:`nasengine.lattice.losses.edge_marginals`): each edge
  is computed once per layer and no pattern-level tensor is ever formed.
- The marginal and the op weights are folded together, ``w_{e,n} = m_e alpha_{e,n}``, and each
  ``w_{e,n}`` is folded into the affine InstanceNorm of op n (``w (gamma xhat + beta)``), so no
  weighted copy of any op output is saved for backward.
- Backward rebuilds the cheap front of every node (resampling ops, the concatenated edge
  inputs, their ReLU) from the previous layer's features, which every reading edge shares, so
  none of those tensors is saved (:mod:`.recompute`; issue 15: 0.70x of the bytes saved
  before). Optionally also the P3D middle tensors (``recompute="front+middle"``) and, in
  :class:`~nasengine.lattice.supernet.LatticeSupernet`, whole layers (``checkpoint_layers``).
- All edges into one feature node share one ReLU and run as grouped convolutions (one conv call
  per kernel shape for the 2-3 edges of the node) and one InstanceNorm over all their op
  outputs; the weighted sum is a reshape + sum. Grouped convolutions also take oneDNN's fast
  path on CPU at batch size 1 (PyTorch's reference kernel is several times slower there).
- CPU kernel selection: 3x1x1 kernels get a no-op dilation (:func:`fast_dilation`) so that they
  leave the slow reference path; on 2x2x2 features the 3x3x3 convs run per edge (im2col beats
  oneDNN there); the head's full-resolution convs split batch-1 volumes into two halo slabs
  (:class:`nasengine.ops.operations.ReLUConvNorm`).

Choices where the paper is open: edge order and pattern numbering (see
:mod:`nasengine.lattice.space`); the head (MONAI's, see :mod:`nasengine.lattice.genotypes`); instance norms are affine; ``alpha ~ N(1, 0.01)`` and
``p_e`` logits ``~ N(0, 0.01)`` read 0.01 as the standard deviation (as MONAI does).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...lattice.space import SearchSpace, level_channels
from ...lattice.supernet import LatticeSupernet
from ...ops.operations import P3D_KERNELS, FactorizedIncrease, FactorizedReduce, fast_dilation
from .cell_ops import DINTS_CELL_OPS
from .recompute import ConvSpec, NodePlan, _conv, node_convs

__all__ = ["MixedNode", "DiNTSSupernet", "level_channels", "RECOMPUTE_MODES"]

#: What the fused node rebuilds in backward instead of saving (:mod:`.recompute`):
#: ``"front"`` the resampling ops, the concatenated edge inputs and their ReLU (the default);
#: ``"front+middle"`` also the three P3D middle tensors (one extra conv per P3D op in backward);
#: ``"none"`` plain autograd, which saves all of them (the path before issue 15; tests, bench).
RECOMPUTE_MODES = ("front", "front+middle", "none")

# The fused node hard-codes skip, conv_3x3x3 and then the P3D ops in P3D_KERNELS order.
_P3D = tuple(P3D_KERNELS.values())
if DINTS_CELL_OPS[:2] != ("skip", "conv_3x3x3") or tuple(P3D_KERNELS) != DINTS_CELL_OPS[2:]:
    raise ImportError(f"the fused DiNTS node does not match DINTS_CELL_OPS {DINTS_CELL_OPS}")


_CONV3 = ConvSpec(padding=(1, 1, 1))
_FIRST = tuple(ConvSpec(padding=tuple(k // 2 for k in k0)) for k0, _ in _P3D)
_SECOND = tuple(ConvSpec(padding=tuple(k // 2 for k in k1), dilation=fast_dilation(k1)) for _, k1 in _P3D)


def _conv_weight(c_out: int, c_in: int, kernel) -> nn.Parameter:
    w = torch.empty(c_out, c_in, *kernel)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # nn.Conv3d's default, per edge (fan_in = c_in*k)
    return nn.Parameter(w)


class MixedNode(nn.Module):
    """All candidate edges into one feature node of one layer, each with DiNTS's 5 cell ops,
    fused (the fast path; :class:`nasengine.lattice.supernet.MixedLatticeNode` is the plain one).

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
        self.same_level_edge = next(k for k, e in enumerate(self.edge_range) if space.edges[e].resample == "none")
        # weights of edge k live in rows k*c:(k+1)*c of each grouped conv
        self.conv3 = nn.Parameter(torch.cat([_conv_weight(c, c, (3, 3, 3)) for _ in range(n)]))
        self.p3d_a = nn.ParameterList([torch.cat([_conv_weight(c, c, k0) for _ in range(n)]) for k0, _ in _P3D])
        self.p3d_b = nn.ParameterList([torch.cat([_conv_weight(c, c, k1) for _ in range(n)]) for _, k1 in _P3D])
        # InstanceNorm affine of (op, edge): [4 ops, n edges, c]
        self.gamma = nn.Parameter(torch.ones(4, n, c))
        self.beta = nn.Parameter(torch.zeros(4, n, c))
        self.channels_last = False  # set by the supernet
        self.recompute = "front"  # set by the supernet: one of RECOMPUTE_MODES

    def front(self, sources) -> torch.Tensor:
        """``x = cat_k(pre_k(source_k))`` ``[B, n c, *S]``: the edge inputs before the shared ReLU
        (rebuilt in backward by :mod:`.recompute` instead of being saved)."""
        x = torch.cat([p(t) for p, t in zip(self.pre, sources)], dim=1)
        if self.channels_last:  # oneDNN's channels-last grouped convs are 2-4x faster on CPU
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def plan(self, voxels: int, device_type: str) -> NodePlan:
        """The :class:`~.recompute.NodePlan` of this node for inputs of ``voxels`` voxels."""
        return NodePlan(
            n=self.n, c=self.c, front=self.front, n_pre_params=len(self.pre_params),
            conv3=_CONV3, first=_FIRST, second=_SECOND,
            # 2x2x2 features with many channels: PyTorch's im2col path beats oneDNN's grouped conv
            conv3_per_edge=device_type == "cpu" and voxels <= 8,
            recompute_middle=self.recompute == "front+middle",
        )

    @property
    def pre_params(self) -> list[nn.Parameter]:
        return list(self.pre.parameters())

    def forward(self, xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        if self.recompute == "none":
            return self.forward_saving_everything(xs, w)
        n, c = self.n, self.c
        plan = self.plan(math.prod(xs[self.same_level_edge].shape[2:]), xs[0].device.type)
        y, skip = node_convs(plan, xs, self.pre_params, w[:, 0], self.conv3, list(self.p3d_a), list(self.p3d_b))
        if self.channels_last:  # GroupNorm is slow on channels-last: normalise a contiguous copy
            y = y.contiguous()
        scale = w[:, 1:].t().unsqueeze(-1)  # [4, n, 1]
        y = F.group_norm(y, 4 * n * c, (self.gamma * scale).reshape(-1), (self.beta * scale).reshape(-1))  # instance norm
        b, s = y.shape[0], y.shape[2:]
        out = y.view(b, 4 * n, c, *s).sum(1)
        return out + skip

    def forward_saving_everything(self, xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        """The same node in plain autograd (which saves ``x``, ``ReLU(x)`` and the resampling
        internals): the pre-issue-15 path, kept to check :meth:`forward` against (tests, bench)."""
        n, c = self.n, self.c
        x = self.front(xs)
        r = F.relu(x)
        plan = self.plan(math.prod(x.shape[2:]), x.device.type)
        ys = [_conv(r, self.conv3, plan.conv3, n, plan.conv3_per_edge)]
        for wa, wb, sa, sb in zip(self.p3d_a, self.p3d_b, plan.first, plan.second):
            ys.append(_conv(_conv(r, wa, sa, n), wb, sb, n))
        y = torch.cat(ys, dim=1)  # [B, 4*n*c, *S]: op-major, then edge, then channel
        if self.channels_last:
            y = y.contiguous()
        scale = w[:, 1:].t().unsqueeze(-1)
        y = F.group_norm(y, 4 * n * c, (self.gamma * scale).reshape(-1), (self.beta * scale).reshape(-1))
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


class DiNTSSupernet(LatticeSupernet):
    """The searchable DiNTS network: ``SearchableNetwork`` of the training contract.

    Args:
        in_channels: image channels; out_channels: classes (logits).
        num_layers: L; num_depths: D; stem_filters: filters at full resolution.
        channels_last: run the fused nodes in the channels-last 3D memory format.
        recompute: what the fused nodes rebuild in backward (:data:`RECOMPUTE_MODES`).
        checkpoint_layers: activation checkpointing per lattice layer (each layer's forward
            rerun in backward; only the layer inputs are held between forward and backward).
        **lattice: the keyword arguments of :class:`LatticeSupernet` (op_costs, edge_costs,
            sigma, topology_weight, alpha_init, edge_init, genotype_*); the cell ops are
            :data:`DINTS_CELL_OPS` and the method ``"dints"``.

    Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, S divisible by 2^D.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, num_depths: int,
                 stem_filters: int, *, channels_last: bool = False, recompute: str = "front",
                 checkpoint_layers: bool = False, **lattice):
        if recompute not in RECOMPUTE_MODES:
            raise ValueError(f"recompute must be one of {RECOMPUTE_MODES}, got {recompute!r}")
        super().__init__(in_channels, out_channels, num_layers, num_depths, stem_filters,
                         cell_ops=DINTS_CELL_OPS, method="dints", checkpoint_layers=checkpoint_layers, **lattice)
        self.channels_last = channels_last
        self.recompute = recompute
        for layer in self.layers:
            for node in layer:
                node.channels_last = channels_last
                node.recompute = recompute

    def make_node(self, level: int) -> MixedNode:
        return MixedNode(self.space, level, self.channels)
