"""The convolutions of one fused DiNTS node as a custom autograd Function that keeps only what
backward cannot cheaply rebuild (issue 15: search memory at large patches).

What plain autograd keeps per feature node (n edges, c channels, S voxels), and what this
Function keeps instead:

============================================  ==========================  =====================
tensor                                        plain autograd              here
============================================  ==========================  =====================
resampled inputs (FactorizedReduce/Increase)  ReLU output + norm input    nothing: rebuilt
concatenated edge inputs ``x`` (skip weights)  ``n c S``                    nothing: rebuilt
``ReLU(x)`` (input of every cell conv)         ``n c S``                    nothing: rebuilt
P3D middle tensors                            ``3 n c S``                  ``3 n c S`` or rebuilt
the node's sources (previous layer's output)  --                          shared, once per layer
============================================  ==========================  =====================

The node's sources are the previous layer's feature nodes: every consumer edge (same level,
up, down) saves the same storage, so they cost ``sum_t c_t S_t`` per layer however many edges
read them. Backward rebuilds ``x = cat(pre_k(source_k))`` and ``ReLU(x)`` from them: that is the
resampling ops (1x1 convs, a trilinear upsample, instance norms), a concatenation and a ReLU,
a few percent of the node's arithmetic. The cell convolutions themselves are never recomputed
unless ``recompute_middle`` is on, which also rebuilds the three P3D middle tensors (one
extra 3x3x1-type conv per P3D op in backward) and saves another ``3 n c S``.

The outputs are the four cell-op conv outputs concatenated, ``[B, 4 n c, *S]`` (op-major, then
edge, then channel; the shared InstanceNorm outside normalises them and saves them, the one
large tensor per node that must stay), and the weighted skip sum ``sum_k w_{k,skip} x_k``.

Numbers: the forward is the same arithmetic in the same order as the plain fused node, so its
outputs are bitwise equal; backward calls the kernels autograd calls (``convolution_backward``,
``threshold_backward``) and accumulates the input gradient in autograd's order, so gradients
agree to rounding (the tests compare both paths).

Mixed precision: the autocast state of the forward is restored for the rebuild in backward,
and the conv backward runs in the dtype the forward convs ran in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ConvSpec", "NodePlan", "node_convs"]


@dataclass(frozen=True)
class ConvSpec:
    """Padding and dilation of one grouped convolution (stride 1, no bias)."""

    padding: tuple[int, int, int]
    dilation: tuple[int, int, int] = (1, 1, 1)


@dataclass(frozen=True)
class NodePlan:
    """What the Function needs besides tensors.

    Attributes:
        n: edges into the node; c: channels of the node.
        front: ``sources -> x``, the concatenated (and, if asked, channels-last) edge inputs
            ``[B, n c, *S]``; called under no_grad in forward and with grad in backward.
        n_pre_params: how many of the Function's tensor inputs are the front's parameters.
        conv3: the 3x3x3 conv; first: the P3D first convs; second: the P3D second convs.
        conv3_per_edge: run the 3x3x3 conv edge by edge (CPU, tiny volumes: faster kernel).
        recompute_middle: rebuild the P3D middle tensors in backward instead of saving them.
    """

    n: int
    c: int
    front: Callable[[Sequence[torch.Tensor]], torch.Tensor]
    n_pre_params: int
    conv3: ConvSpec
    first: tuple[ConvSpec, ...]
    second: tuple[ConvSpec, ...]
    conv3_per_edge: bool
    recompute_middle: bool


def _conv(x: torch.Tensor, w: torch.Tensor, spec: ConvSpec, groups: int, per_edge: bool = False) -> torch.Tensor:
    if per_edge:
        c_in, c_out = x.shape[1] // groups, w.shape[0] // groups
        return torch.cat([F.conv3d(x[:, k * c_in:(k + 1) * c_in], w[k * c_out:(k + 1) * c_out],
                                   padding=spec.padding, dilation=spec.dilation) for k in range(groups)], dim=1)
    return F.conv3d(x, w, padding=spec.padding, dilation=spec.dilation, groups=groups)


def _conv_backward(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor, spec: ConvSpec, groups: int,
                   per_edge: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_input, grad_weight)`` of :func:`_conv` (the kernel autograd's ConvolutionBackward calls)."""
    if per_edge:
        c_in, c_out = x.shape[1] // groups, w.shape[0] // groups
        parts = [_conv_backward(g[:, k * c_out:(k + 1) * c_out], x[:, k * c_in:(k + 1) * c_in],
                                w[k * c_out:(k + 1) * c_out], spec, 1) for k in range(groups)]
        return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 0)
    gi, gw, _ = torch.ops.aten.convolution_backward(
        g, x, w, None, [1, 1, 1], list(spec.padding), list(spec.dilation), False, [0, 0, 0], groups,
        [True, True, False])
    return gi, gw


def _skip_sum(x: torch.Tensor, w0: torch.Tensor, n: int, c: int) -> torch.Tensor:
    b, s = x.shape[0], x.shape[2:]
    return (x.view(b, n, c, *s) * w0.view(1, n, 1, 1, 1, 1)).sum(1)


class _NodeConvs(torch.autograd.Function):
    """Inputs: ``plan``, then ``n`` sources, the front's parameters, the skip weights ``w0 [n]``,
    the 3x3x3 weight, the 3 P3D first weights and the 3 P3D second weights.
    Outputs: ``(y [B, 4 n c, *S], skip [B, c, *S])``."""

    @staticmethod
    def forward(ctx, plan: NodePlan, *tensors: torch.Tensor):
        n = plan.n
        sources, rest = tensors[:n], tensors[n:]
        pre_params, rest = rest[: plan.n_pre_params], rest[plan.n_pre_params:]
        w0, w3, firsts, seconds = rest[0], rest[1], rest[2:5], rest[5:8]
        x = plan.front(sources)
        r = F.relu(x)
        ys = [_conv(r, w3, plan.conv3, n, plan.conv3_per_edge)]
        mids = []
        for wa, wb, sa, sb in zip(firsts, seconds, plan.first, plan.second):
            mid = _conv(r, wa, sa, n)
            mids.append(mid)
            ys.append(_conv(mid, wb, sb, n))
        y = torch.cat(ys, dim=1)
        skip = _skip_sum(x, w0, n, plan.c)
        del x, r, ys
        device = sources[0].device.type
        ctx.plan = plan
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.conv_dtype = y.dtype
        ctx.save_for_backward(*sources, w0, w3, *firsts, *seconds,
                              *(() if plan.recompute_middle else mids))
        ctx.n_pre_params = len(pre_params)
        ctx.pre_params = pre_params  # parameters (leaves held by the module): not activations
        return y, skip

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_y: torch.Tensor, g_skip: torch.Tensor):
        plan: NodePlan = ctx.plan
        n, c = plan.n, plan.c
        saved = ctx.saved_tensors
        sources, rest = saved[:n], saved[n:]
        w0, w3, firsts, seconds, mids = rest[0], rest[1], rest[2:5], rest[5:8], list(rest[8:])
        pre_params = ctx.pre_params
        device, autocast_on, autocast_dtype = ctx.autocast
        need_src = [s.requires_grad for s in sources]
        with torch.enable_grad(), torch.autocast(device, dtype=autocast_dtype, enabled=autocast_on):
            src = [s.detach().requires_grad_(req) for s, req in zip(sources, need_src)]
            x = plan.front(src)
        xd = x.detach()
        r = F.relu(xd)
        cdt = ctx.conv_dtype
        rc = r.to(cdt)
        if g_y is None:
            g_y = torch.zeros((), dtype=cdt, device=r.device).expand(r.shape[0], 4 * n * c, *r.shape[2:])
        g_parts = g_y.to(cdt).split(n * c, dim=1)
        grad_w3 = grad_r = None
        grads_first, grads_second = [], []
        # autograd meets the P3D branches first (last in forward), then the 3x3x3 conv
        for o in range(2, -1, -1):
            wa, wb, sa, sb = firsts[o], seconds[o], plan.first[o], plan.second[o]
            mid = mids[o] if mids else _conv(rc, wa.to(cdt), sa, n)
            g_mid, g_wb = _conv_backward(g_parts[o + 1], mid, wb.to(cdt), sb, n)
            del mid
            g_r, g_wa = _conv_backward(g_mid, rc, wa.to(cdt), sa, n)
            grads_first.insert(0, g_wa.to(wa.dtype))
            grads_second.insert(0, g_wb.to(wb.dtype))
            g_r = g_r.to(r.dtype)
            grad_r = g_r if grad_r is None else grad_r + g_r
        g_r, g_w3 = _conv_backward(g_parts[0], rc, w3.to(cdt), plan.conv3, n, plan.conv3_per_edge)
        grad_w3 = g_w3.to(w3.dtype)
        grad_r = grad_r + g_r.to(r.dtype)
        del rc, g_parts
        grad_x = torch.ops.aten.threshold_backward(grad_r, r, 0)
        del grad_r, r
        grad_w0 = None
        if g_skip is not None:
            b, s = xd.shape[0], xd.shape[2:]
            gs = g_skip.unsqueeze(1)
            grad_x = grad_x + (gs * w0.view(1, n, 1, 1, 1, 1)).reshape(b, n * c, *s)
            if ctx.needs_input_grad[1 + n + ctx.n_pre_params]:
                grad_w0 = (gs * xd.view(b, n, c, *s)).sum(dim=(0, 2, 3, 4, 5))
        inputs = [t for t, req in zip(src, need_src) if req] + [p for p in pre_params if p.requires_grad]
        grads = iter(torch.autograd.grad(x, inputs, grad_x, allow_unused=True) if inputs else ())
        grad_src = [next(grads) if req else None for req in need_src]
        grad_pre = [next(grads) if p.requires_grad else None for p in pre_params]
        return (None, *grad_src, *grad_pre, grad_w0, grad_w3, *grads_first, *grads_second)


def node_convs(plan: NodePlan, sources: Sequence[torch.Tensor], pre_params: Sequence[torch.Tensor],
               w0: torch.Tensor, w3: torch.Tensor, firsts: Sequence[torch.Tensor],
               seconds: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y [B, 4 n c, *S], skip [B, c, *S])`` of one fused node (see the module docstring).

    Args:
        plan: the node's :class:`NodePlan` (``n_pre_params == len(pre_params)``).
        sources: the ``n`` edge sources, each at its own level.
        pre_params: every parameter ``plan.front`` uses (they receive gradients).
        w0: ``[n]`` skip weights; w3: the grouped 3x3x3 weight; firsts/seconds: the 3 P3D ops'
        grouped first/second weights, in :data:`nasengine.ops.operations.P3D_KERNELS` order.
    """
    return _NodeConvs.apply(plan, *sources, *pre_params, w0, w3, *firsts, *seconds)
