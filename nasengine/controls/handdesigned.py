"""The hand-designed control: MONAI's ``DynUNet`` configured from the dataset as nnU-Net does.

Expressed as a genotype of the *network-plan kind* (a choice the issue leaves open): a
version-2 genotype (``kind: "ushape"``, ``method: "handdesigned"``) whose
``meta["network_plan"]`` holds the ``DynUNet`` arguments. ``nodes``/``edges`` draw the U
(encoder levels, skips, head) with generic ops so the document validates and the dashboard
can show it; the network itself is built from the plan by
``nasengine.inference.bundle.network_from_genotype`` (hence by retrain, the bundle and
prediction), and ``derived`` holds the parameters and FLOPs of the real ``DynUNet`` at the
patch (the graph drawing would not give them). A genotype that is not DynUNet-exact would
not be a faithful control, so the plan, not the drawing, is the network.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

#: ``genotype["meta"][NETWORK_PLAN_KEY]``: the network-plan of a hand-designed genotype.
NETWORK_PLAN_KEY = "network_plan"
PLANNED_CLASS = "monai.networks.nets.DynUNet"

#: nnU-Net's planning constants (nnunetv2 ``ExperimentPlanner``): feature maps are pooled
#: down to at least 4 voxels per axis, an axis is pooled only while its spacing is at most
#: twice the finest one, 3x3x3 kernels (1 along an axis that is much coarser), filters
#: 32 doubling per level up to 320, at most 5 poolings per axis.
MIN_FEATURE_EDGE = 4
MAX_POOLINGS = 5
ANISOTROPY_RATIO = 2.0
NNUNET_BASE_FILTERS = 32
NNUNET_MAX_FILTERS = 320


def nnunet_kernels_and_strides(spacing: Sequence[float], patch_size: Sequence[int]
                               ) -> tuple[list[list[int]], list[list[int]]]:
    """nnU-Net's kernel sizes and strides for a patch at a spacing (one entry per level;
    the first stride is 1). An axis is pooled while its spacing is within
    ``ANISOTROPY_RATIO`` of the finest and its feature map stays >= ``MIN_FEATURE_EDGE``;
    its kernel is 1 while its spacing is more than twice the finest (thick slices)."""
    spacing = [float(s) for s in spacing]
    shape = [int(p) for p in patch_size]
    kernels, strides = [], [[1, 1, 1]]
    pools = [0, 0, 0]
    while True:
        finest = min(spacing)
        kernels.append([3 if s <= ANISOTROPY_RATIO * finest else 1 for s in spacing])
        pool = [int(s <= ANISOTROPY_RATIO * finest and n // 2 >= MIN_FEATURE_EDGE
                    and n % 2 == 0 and k < MAX_POOLINGS)
                for s, n, k in zip(spacing, shape, pools)]
        if not any(pool):
            break
        strides.append([2 if p else 1 for p in pool])
        for axis, p in enumerate(pool):
            if p:
                spacing[axis] *= 2
                shape[axis] //= 2
                pools[axis] += 1
    return kernels, strides


def _filters(levels: int, base: int) -> list[int]:
    return [min(base * 2 ** i, max(NNUNET_MAX_FILTERS, base)) for i in range(levels)]


def build_planned_network(plan: Mapping[str, Any]) -> nn.Module:
    """The ``DynUNet`` of a network plan (``meta["network_plan"]``)."""
    from monai.networks.nets import DynUNet

    if plan.get("class") != PLANNED_CLASS:
        raise ValueError(f"unknown network plan class {plan.get('class')!r}; known: "
                         f"{PLANNED_CLASS}")
    strides = [list(s) for s in plan["strides"]]
    return DynUNet(spatial_dims=3, in_channels=int(plan["in_channels"]),
                   out_channels=int(plan["out_channels"]),
                   kernel_size=[list(k) for k in plan["kernel_size"]], strides=strides,
                   upsample_kernel_size=strides[1:], filters=list(plan["filters"]),
                   norm_name=("INSTANCE", {"affine": True}),
                   act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
                   deep_supervision=False, res_block=False)


def planned_figures(plan: Mapping[str, Any], patch: Sequence[int]) -> dict[str, Any]:
    """``derive_figures`` for a network plan: parameters, forward FLOPs and the activation bytes
    autograd saves for backward per sample (counted with saved-tensor hooks, each storage once,
    in one forward of a zero ``patch``; the plan's nodes only draw the network, so its figures
    cannot come from them)."""
    network = build_planned_network(plan)
    in_channels = int(plan["in_channels"])
    figures = _figures(network, in_channels, patch)
    seen: dict[int, int] = {}
    params = {p.untyped_storage().data_ptr() for p in network.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        network(torch.zeros(1, in_channels, *[int(p) for p in patch]))
    figures["memory_bytes"] = int(sum(seen.values()))
    return figures


def _figures(network: nn.Module, in_channels: int, patch: Sequence[int]) -> dict[str, Any]:
    """Parameters and forward FLOPs of one ``patch`` sample (``torch.utils.flop_counter``;
    a multiply-add counts 2, as ``derive_figures`` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    parameters = sum(p.numel() for p in network.parameters())
    was = network.training
    network.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        network(torch.zeros(1, in_channels, *[int(p) for p in patch]))
    network.train(was)
    return {"parameters": int(parameters), "flops": int(counter.get_total_flops()),
            "patch_size": [int(p) for p in patch]}


def _drawing(levels: int, filters: list[int], in_channels: int, out_channels: int
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes and edges that draw the U with generic ops (encoder, bottleneck, decoder,
    skips); level ``l`` is the l-th pooling (drawn isotropic)."""
    nodes = [{"id": "in", "kind": "input", "channels": in_channels, "level": 0}]
    edges: list[dict[str, Any]] = []
    position = 0
    depth = max(levels - 1, 1)
    for level in range(1, depth + 1):
        position += 1
        nodes.append({"id": f"enc{level}", "kind": "feature", "level": level,
                      "channels": filters[min(level - 1, len(filters) - 1)],
                      "position": position})
        if level == 1:
            edges.append({"source": "in", "target": "enc1", "op": "stem", "resample": "down",
                          "params": {"factor": 2}})
        else:
            edges.append({"source": f"enc{level - 1}", "target": f"enc{level}",
                          "op": "conv_3x3x3", "resample": "down"})
    previous = f"enc{depth}"
    for level in range(depth - 1, 0, -1):
        position += 1
        node = f"dec{level}"
        nodes.append({"id": node, "kind": "feature", "level": level,
                      "channels": filters[level - 1], "position": position})
        edges.append({"source": previous, "target": node, "op": "conv_3x3x3",
                      "resample": "up"})
        edges.append({"source": f"enc{level}", "target": node, "op": "conv_1x1x1",
                      "resample": "none"})
        previous = node
    position += 1
    nodes.append({"id": "z", "kind": "feature", "level": 0, "channels": filters[0],
                  "position": position})
    nodes.append({"id": "out", "kind": "output", "level": 0, "channels": out_channels,
                  "position": position + 1})
    edges.append({"source": previous, "target": "z", "op": "head_up", "resample": "up"})
    edges.append({"source": "z", "target": "out", "op": "head_out"})
    return nodes, edges


def handdesigned_architecture(plan: Any, patch_size: Sequence[int] | None = None, *,
                              in_channels: int | None = None, out_channels: int | None = None,
                              target_parameters: int | None = None,
                              base_filters: int | None = None) -> dict[str, Any]:
    """A hand-designed control genotype: nnU-Net's ``DynUNet`` configuration for the dataset.

    Args:
        plan: a ``nasengine.data.Plan`` (or its dict): ``target_spacing``, ``patch_size``,
            ``in_channels``/``channel_names``, ``label_ids``.
        patch_size: the training patch (default the plan's).
        in_channels / out_channels: override the plan's.
        target_parameters: match this size (e.g. the searched network's parameters): the
            base filter count (even, 4..32) whose network is closest is chosen; without it
            nnU-Net's 32.
        base_filters: a fixed base filter count (overrides ``target_parameters``).

    Returns:
        A validated version-2 genotype (``method: "handdesigned"``, ``kind: "ushape"``) with
        ``meta.network_plan`` and ``derived`` ``{"parameters", "flops", "patch_size"}``.
    """
    from nasengine.genotype import validate

    p = plan.to_dict() if hasattr(plan, "to_dict") else dict(plan)
    patch = [int(v) for v in (patch_size if patch_size is not None else p["patch_size"])]
    spacing = [float(v) for v in p.get("target_spacing") or (1.0, 1.0, 1.0)]
    c_in = int(in_channels if in_channels is not None else
               p.get("in_channels") or len(p.get("channel_names") or [0]))
    c_out = int(out_channels if out_channels is not None else
                p.get("out_channels") or len(p.get("label_ids") or [0, 1]))
    kernels, strides = nnunet_kernels_and_strides(spacing, patch)
    levels = len(strides)
    total = [math.prod(s[a] for s in strides) for a in range(3)]
    bad = [n for n, t in zip(patch, total) if n % t]
    if bad:
        raise ValueError(f"patch {patch} is not divisible by the network's total strides "
                         f"{total}")

    def plan_for(base: int) -> dict[str, Any]:
        return {"class": PLANNED_CLASS, "in_channels": c_in, "out_channels": c_out,
                "kernel_size": kernels, "strides": strides, "filters": _filters(levels, base),
                "configured_from": {"spacing": spacing, "patch_size": patch,
                                    "rule": "nnU-Net ExperimentPlanner (pooling to >= 4 "
                                            "voxels, anisotropy ratio 2)"}}

    if base_filters is None and target_parameters is not None:
        def size(base: int) -> int:
            return sum(q.numel() for q in build_planned_network(plan_for(base)).parameters())

        base_filters = min(range(4, 33, 2), key=lambda b: abs(size(b) - target_parameters))
    base = int(base_filters or NNUNET_BASE_FILTERS)
    network_plan = plan_for(base)
    network = build_planned_network(network_plan)
    nodes, edges = _drawing(levels, network_plan["filters"], c_in, c_out)
    doc = {
        "format": "voxelsearch-genotype", "version": 2, "method": "handdesigned",
        "kind": "ushape", "in_channels": c_in, "out_channels": c_out,
        "nodes": nodes, "edges": edges, "cells": [], "continuous": False,
        "meta": {NETWORK_PLAN_KEY: network_plan, "divisor": max(total),
                 "control": "handdesigned",
                 "note": "MONAI DynUNet configured as nnU-Net does; nodes/edges only draw it"},
        "derived": _figures(network, c_in, patch),
    }
    return validate(doc)
