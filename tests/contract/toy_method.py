"""A tiny searchable method written only against the public plug-in surface.

It exists to prove that a method plugs in with no edit outside its own file: the contract
suite's conftest registers it (it is never shipped), and every contract test then runs over
it like over a built-in method.

The network has two resolution levels below the stem; each of its three searchable edges is a
softmax mix of two shared ops of equal memory cost (``p3d_3x3x1``, ``p3d_1x3x3``)::

    in --stem/2--> a --mix--> b --down+mix--> c --up+mix--> d --head_up x2--> e --head_out--> out
                              \\_____________skip_____________/

Level 1 (``a``, ``b``, ``d``) has ``width`` channels, level 2 (``c``) ``2 * width``. Input
``[B, in_channels, X, Y, Z]`` with X, Y, Z multiples of 4 gives logits ``[B, out_channels, X, Y, Z]``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from nasengine.config import setting
from nasengine.methods import DataSettings, MemoryEstimate, SearchMethod
from nasengine.ops import OPS
from nasengine.training.search_loop import SearchSchedule

NAME = "toy"
CANDIDATE_OPS = ("p3d_3x3x1", "p3d_1x3x3")
#: (source, target, resample) of each searchable edge, in order.
SEARCHABLE_EDGES = (("a", "b", "none"), ("b", "c", "down"), ("c", "d", "up"))
LEVELS = {"in": 0, "a": 1, "b": 1, "c": 2, "d": 1, "e": 0, "out": 0}
LAYERS = {"in": 0, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "out": 6}
DIVISOR = 4  # 2 ** deepest level
FLOAT_BYTES = 4


@dataclasses.dataclass
class ToyConfig:
    """Settings of the toy search (contract-suite test double)."""

    width: int = setting(16, "Channels at level 1 (doubled at level 2).", minimum=1, maximum=256)
    patch_size: list[int] = setting([96, 96, 96], "Search patch (x, y, z), multiples of 4.",
                                    minimum=4, maximum=512, multiple_of=4)
    batch_size: int = setting(2, "Patches per search step.", minimum=1, maximum=64)
    retrain_batch_size: int = setting(2, "Patches per retraining step (memory estimate).",
                                      minimum=1, maximum=64)
    warmup_steps: int = setting(100, "Warm-up steps (weights only).", minimum=0)
    weight_only_steps: int = setting(100, "Weight-only steps after the warm-up.", minimum=0)
    search_steps: int = setting(400, "Alternating weight/architecture steps.", minimum=1)
    lr_start: float = setting(0.01, "SGD learning rate at the start of the warm-up.",
                              minimum=0.0, maximum=10.0)
    lr_peak: float = setting(0.05, "SGD learning rate after the warm-up.", minimum=0.0,
                             maximum=10.0)
    arch_lr: float = setting(0.01, "Adam learning rate of the op logits.", minimum=0.0,
                             maximum=1.0)
    entropy_weight: float = setting(0.1, "Weight of the op-choice entropy regulariser.",
                                    minimum=0.0, maximum=10.0)
    snapshot_every: int = setting(50, "Steps between architecture snapshots.", minimum=0)
    validate_every: int = setting(200, "Steps between validations (0: never).", minimum=0)
    checkpoint_every: int = setting(100, "Steps between checkpoints.", minimum=0)
    amp: bool = setting(False, "Mixed precision on CUDA.")
    seed: int = setting(0, "Random seed.", minimum=0, maximum=2**31 - 1)

    def validate(self) -> None:
        if len(self.patch_size) != 3:
            raise ValueError("patch_size: needs 3 sizes (x, y, z)")


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {"width": 2, "patch_size": [16, 16, 16], "warmup_steps": 2,
             "weight_only_steps": 2, "search_steps": 4, "snapshot_every": 2,
             "validate_every": 4, "checkpoint_every": 2},
}


def _voxels(shape: Sequence[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _level_shape(patch: Sequence[int], level: int) -> tuple[int, ...]:
    return tuple(int(s) // 2 ** level for s in patch)


def toy_genotype(in_channels: int, out_channels: int, width: int, ops: Sequence[str], *,
                 op_weights: Sequence[dict[str, float]] | None = None,
                 continuous: bool = False) -> dict[str, Any]:
    """The genotype document of the toy network with ``ops[i]`` on searchable edge ``i``."""
    channels = {"in": in_channels, "a": width, "b": width, "c": 2 * width, "d": width,
                "e": width, "out": out_channels}
    kinds = {"in": "input", "out": "output"}
    nodes = [{"id": n, "kind": kinds.get(n, "feature"), "layer": LAYERS[n], "level": LEVELS[n],
              "channels": channels[n]} for n in LAYERS]
    edges: list[dict[str, Any]] = [{"source": "in", "target": "a", "op": "stem",
                                    "resample": "down", "params": {"factor": 2}}]
    for i, (source, target, resample) in enumerate(SEARCHABLE_EDGES):
        edge = {"source": source, "target": target, "op": ops[i], "resample": resample,
                "params": {}, "weight": 1.0}
        if op_weights is not None:
            edge["op_weights"] = dict(op_weights[i])
        edges.append(edge)
    edges += [
        {"source": "b", "target": "d", "op": "skip", "resample": "none", "params": {}},
        {"source": "d", "target": "e", "op": "head_up", "resample": "up", "params": {}},
        {"source": "e", "target": "out", "op": "head_out", "resample": "none", "params": {}},
    ]
    return {"format": "voxelsearch-genotype", "version": 2, "method": NAME, "kind": "graph",
            "in_channels": in_channels, "out_channels": out_channels, "nodes": nodes,
            "edges": edges, "cells": [], "derived": {}, "meta": {"divisor": DIVISOR},
            "continuous": continuous}


class MixedEdge(nn.Module):
    """``[resample ->] sum_i softmax(alpha)_i * op_i``: [B, c_in, *S] -> [B, c_out, *S']."""

    def __init__(self, c_in: int, c_out: int, resample: str):
        super().__init__()
        self.resample = OPS[resample].build(c_in, c_out) if resample != "none" else None
        self.ops = nn.ModuleList(OPS[name].build(c_out, c_out) for name in CANDIDATE_OPS)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.resample is not None:
            x = self.resample(x)
        out = weights[0] * self.ops[0](x)
        for k in range(1, len(self.ops)):
            out = out + weights[k] * self.ops[k](x)
        return out


class ToySupernet(nn.Module):
    """The searchable toy network (the ``SearchableNetwork`` the shared bi-level loop drives):
    ``[B, in_channels, *patch] -> logits [B, out_channels, *patch]``."""

    def __init__(self, in_channels: int, out_channels: int, width: int,
                 entropy_weight: float = 0.1):
        super().__init__()
        self.in_channels, self.out_channels, self.width = in_channels, out_channels, width
        self.entropy_weight = entropy_weight
        self.stem = OPS["stem"].build(in_channels, width, factor=2)
        self.mixed = nn.ModuleList([MixedEdge(width, width, "none"),
                                    MixedEdge(width, 2 * width, "down"),
                                    MixedEdge(2 * width, width, "up")])
        self.head_up = OPS["head_up"].build(width, width)
        self.head_out = OPS["head_out"].build(width, out_channels)
        # Channel dropout draws from torch's global RNG, so the resume contract notices a loop
        # that does not restore it (saves only a [B, C, 1, 1, 1] mask).
        self.dropout = nn.Dropout3d(0.1)
        self.op_logits = nn.Parameter(1e-3 * torch.randn(len(SEARCHABLE_EDGES),
                                                         len(CANDIDATE_OPS)))

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if name != "op_logits")

    def arch_parameters(self) -> Iterator[nn.Parameter]:
        return iter([self.op_logits])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.op_logits, dim=1)
        a = self.stem(x)
        b = self.mixed[0](a, weights[0])
        c = self.mixed[1](b, weights[1])
        d = self.mixed[2](c, weights[2]) + b
        return self.head_out(self.head_up(self.dropout(d)))

    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        p = torch.softmax(self.op_logits, dim=1)
        return {"entropy": -(p * torch.log(p)).sum() * self.entropy_weight}

    def _op_weights(self) -> list[dict[str, float]]:
        p = torch.softmax(self.op_logits.detach().cpu(), dim=1)
        return [{name: float(row[k]) for k, name in enumerate(CANDIDATE_OPS)} for row in p]

    def _chosen(self, weights: list[dict[str, float]]) -> list[str]:
        return [max(CANDIDATE_OPS, key=w.__getitem__) for w in weights]

    def snapshot(self) -> dict[str, Any]:
        weights = self._op_weights()
        return toy_genotype(self.in_channels, self.out_channels, self.width,
                            self._chosen(weights), op_weights=weights, continuous=True)

    def decode(self) -> dict[str, Any]:
        return toy_genotype(self.in_channels, self.out_channels, self.width,
                            self._chosen(self._op_weights()))


def _activation_bytes(in_channels: int, out_channels: int, width: int,
                      patch: Sequence[int], *, supernet: bool) -> int:
    """Bytes autograd saves per sample in one forward, from the op memory costs.

    The supernet runs both candidate ops on each mixed edge, and each product
    ``weight * op(x)`` also saves the op's output (for the weight's gradient); the discrete
    network runs one op per edge (both candidates cost the same). The supernet's channel
    dropout mask (``[B, C, 1, 1, 1]``) is left out: a few bytes per sample.
    """
    shape = {level: _level_shape(patch, level) for level in (0, 1, 2)}
    channels = {1: width, 2: 2 * width}
    total = OPS["stem"].memory(in_channels, width, tuple(patch), factor=2)
    for source, target, resample in SEARCHABLE_EDGES:
        c_in, c_out = channels[LEVELS[source]], channels[LEVELS[target]]
        if resample != "none":
            total += OPS[resample].memory(c_in, c_out, shape[LEVELS[source]])
        at_target = shape[LEVELS[target]]
        op_bytes = [OPS[name].memory(c_out, c_out, at_target) for name in CANDIDATE_OPS]
        if supernet:
            total += sum(op_bytes) + len(CANDIDATE_OPS) * c_out * _voxels(at_target) * FLOAT_BYTES
        else:
            total += max(op_bytes)
    total += OPS["head_up"].memory(width, width, shape[1])
    total += OPS["head_out"].memory(width, out_channels, shape[0])
    return int(total)


class ToyMethod(SearchMethod):
    """The contract suite's own method: a two-level, three-edge differentiable op search."""

    name = NAME
    paper = "none (contract-suite test double)"
    description = "Three edges, each a softmax mix of two P3D ops, on a two-level network."
    config_class = ToyConfig
    presets = PRESETS
    default_preset = "paper"

    def data_settings(self, config: ToyConfig) -> DataSettings:
        return dataclasses.replace(super().data_settings(config), divisor=DIVISOR)

    def build_supernet(self, config: ToyConfig, in_channels: int, out_channels: int
                       ) -> ToySupernet:
        return ToySupernet(in_channels, out_channels, config.width, config.entropy_weight)

    def search_schedule(self, config: ToyConfig) -> SearchSchedule:
        names = {f.name for f in dataclasses.fields(SearchSchedule)}
        values = {k: v for k, v in dataclasses.asdict(config).items() if k in names}
        values["lr_milestones"] = ()
        return SearchSchedule(**values)

    def estimate_memory(self, config: ToyConfig, in_channels: int, out_channels: int
                        ) -> MemoryEstimate:
        patch = [int(s) for s in config.patch_size]
        search_act = config.batch_size * _activation_bytes(
            in_channels, out_channels, config.width, patch, supernet=True)
        retrain_act = config.retrain_batch_size * _activation_bytes(
            in_channels, out_channels, config.width, patch, supernet=False)
        supernet = self.build_supernet(config, in_channels, out_channels)
        # weights, gradients and one optimiser buffer, float32
        params = 3 * FLOAT_BYTES * sum(p.numel() for p in supernet.parameters())
        return MemoryEstimate(
            search_bytes=search_act + params, retrain_bytes=retrain_act + params,
            details={"search_activation_bytes": search_act,
                     "retrain_activation_bytes": retrain_act,
                     "search_batch_size": config.batch_size,
                     "retrain_batch_size": config.retrain_batch_size,
                     "retrain_patch_size": patch})
