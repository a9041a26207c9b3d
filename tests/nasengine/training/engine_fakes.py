"""Small hand-written stand-ins for the engine's collaborators, shared by the engine tests.

``TinySupernet`` implements the SearchableNetwork contract on top of the real op vocabulary
(one searchable edge choosing between ``skip`` and ``conv_3x3x3``); its genotypes are real
``voxelsearch-genotype`` documents. ``FakeLoader`` is a synthetic, resumable patch loader that
also draws from numpy's and python's global RNGs (so a resume test notices RNG restore bugs).
``FakeMethod`` is a registrable SearchMethod over both.
"""
from __future__ import annotations

import dataclasses
import random
from collections import namedtuple
from typing import Any

import numpy as np
import torch
from torch import nn

from nasengine.config import setting
from nasengine.methods.base import MemoryEstimate, SearchMethod
from nasengine.training.search_loop import SearchSchedule

CANDIDATES = ("skip", "conv_3x3x3")
FakeCase = namedtuple("FakeCase", "case_id image label meta")


def tiny_genotype(in_channels: int = 1, out_channels: int = 3, width: int = 4,
                  op: str = "conv_3x3x3", *, continuous: bool = False,
                  op_weights: dict[str, float] | None = None,
                  method: str = "fake") -> dict[str, Any]:
    """input -stem(down)-> a -op-> b -head_up(up)-> c -head_out-> output."""
    edge = {"source": "a", "target": "b", "op": op, "resample": "none", "params": {},
            "weight": 1.0}
    if op_weights is not None:
        edge["op_weights"] = op_weights
    return {
        "format": "voxelsearch-genotype", "version": 1, "method": method,
        "in_channels": in_channels, "out_channels": out_channels,
        "nodes": [
            {"id": "in", "kind": "input", "layer": 0, "level": 0, "channels": in_channels},
            {"id": "a", "kind": "feature", "layer": 1, "level": 1, "channels": width},
            {"id": "b", "kind": "feature", "layer": 2, "level": 1, "channels": width},
            {"id": "c", "kind": "feature", "layer": 3, "level": 0, "channels": width},
            {"id": "out", "kind": "output", "layer": 4, "level": 0, "channels": out_channels},
        ],
        "edges": [
            {"source": "in", "target": "a", "op": "stem", "resample": "down",
             "params": {"factor": 2}},
            edge,
            {"source": "b", "target": "c", "op": "head_up", "resample": "up", "params": {}},
            {"source": "c", "target": "out", "op": "head_out", "resample": "none",
             "params": {}},
        ],
        "cells": [], "derived": {}, "meta": {"divisor": 2}, "continuous": continuous,
    }


class TinySupernet(nn.Module):
    """SearchableNetwork: [B,C,X,Y,Z] -> logits [B,K,X,Y,Z] (X,Y,Z even)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 3, width: int = 4,
                 dropout: float = 0.2):
        super().__init__()
        from nasengine.ops import OPS

        self.in_channels, self.out_channels, self.width = in_channels, out_channels, width
        self.stem = OPS["stem"].build(in_channels, width, factor=2)
        self.candidates = nn.ModuleList(OPS[n].build(width, width) for n in CANDIDATES)
        self.head_up = OPS["head_up"].build(width, width)
        self.head_out = OPS["head_out"].build(width, out_channels)
        self.dropout = nn.Dropout3d(dropout)  # draws from torch's global RNG
        self.alpha = nn.Parameter(torch.zeros(len(CANDIDATES)))
        self.autocast_seen: list[bool] = []

    def weight_parameters(self):
        return (p for n, p in self.named_parameters() if n != "alpha")

    def arch_parameters(self):
        return iter([self.alpha])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast_seen.append(torch.is_autocast_enabled("cpu")
                                  or torch.is_autocast_enabled("cuda"))
        h = self.stem(x)
        w = torch.softmax(self.alpha, 0)
        h = sum(w[i] * op(h) for i, op in enumerate(self.candidates))
        return self.head_out(self.head_up(self.dropout(h)))

    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        p = torch.softmax(self.alpha, 0)
        return {"entropy": -(p * torch.log(p)).sum() * 0.5}

    def _weights(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(CANDIDATES, torch.softmax(self.alpha.detach(), 0))}

    def snapshot(self) -> dict[str, Any]:
        w = self._weights()
        return tiny_genotype(self.in_channels, self.out_channels, self.width,
                             max(w, key=w.get), continuous=True, op_weights=w)

    def decode(self) -> dict[str, Any]:
        w = self._weights()
        return tiny_genotype(self.in_channels, self.out_channels, self.width,
                             max(w, key=w.get))


class FakeLoader:
    """Infinite synthetic batches {"image": [B,C,*p], "label": [B,1,*p]}, resumable."""

    def __init__(self, in_channels: int = 1, patch_size=(16, 16, 16), batch_size: int = 2,
                 seed: int = 0):
        self.in_channels, self.patch_size, self.batch_size = in_channels, tuple(patch_size), batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.drawn = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        x = torch.randn(self.batch_size, self.in_channels, *self.patch_size,
                        generator=self.generator)
        if np.random.rand() < 0.5:  # numpy global RNG
            x = torch.flip(x, dims=(2,))
        if random.random() < 0.5:  # python global RNG
            x = x * 1.25
        label = (x[:, :1] > 0.3).long() + (x[:, :1] > 1.2).long()
        self.drawn += 1
        return {"image": x, "label": label}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.drawn = int(state["drawn"])


def fake_val_cases(n: int = 1, shape=(16, 16, 16), seed: int = 1) -> list[FakeCase]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        image = rng.normal(size=(1, *shape)).astype(np.float32)
        label = ((image[0] > 0.3).astype(np.uint8) + (image[0] > 1.2)).astype(np.uint8)
        cases.append(FakeCase(f"val{i}", image, label, None))
    return cases


def tiny_schedule(**overrides: Any) -> SearchSchedule:
    values = dict(warmup_steps=1, weight_only_steps=1, search_steps=4, lr_start=0.01,
                  lr_peak=0.05, lr_milestones=(3,), lr_gamma=0.5, snapshot_every=2,
                  validate_every=3, checkpoint_every=2, amp=True)
    values.update(overrides)
    return SearchSchedule(**values)


@dataclasses.dataclass
class FakeConfig:
    """Settings of the fake method."""

    patch_size: tuple[int, int, int] = setting((16, 16, 16), "Patch", minimum=8, multiple_of=8)
    batch_size: int = setting(2, "Batch", minimum=1)
    width: int = setting(4, "Channels", minimum=1)
    warmup_steps: int = setting(1, "Warm-up", minimum=0)
    weight_only_steps: int = setting(1, "Weights only", minimum=0)
    search_steps: int = setting(2, "Search", minimum=0)
    validate_every: int = setting(2, "Validation interval", minimum=0)
    checkpoint_every: int = setting(2, "Checkpoint interval", minimum=0)
    divisor: int = setting(8, "Divisor", minimum=1)
    seed: int = setting(0, "Seed", minimum=0)


class FakeMethod(SearchMethod):
    name = "fake"
    paper = "none (test double)"
    description = "Tiny one-edge search for engine tests"
    config_class = FakeConfig
    presets = {"paper": {"search_steps": 100}, "tiny": {}}

    def estimate_memory(self, config, in_channels, out_channels) -> MemoryEstimate:
        voxels = int(np.prod(config.patch_size))
        per = voxels * config.width * 4 * 10
        return MemoryEstimate(search_bytes=per * config.batch_size * 2,
                              retrain_bytes=per * config.batch_size, details={"voxels": voxels})

    def build_supernet(self, config, in_channels, out_channels) -> nn.Module:
        return TinySupernet(in_channels, out_channels, config.width)

    def search_schedule(self, config) -> SearchSchedule:
        return tiny_schedule(warmup_steps=config.warmup_steps,
                             weight_only_steps=config.weight_only_steps,
                             search_steps=config.search_steps,
                             validate_every=config.validate_every,
                             checkpoint_every=config.checkpoint_every, lr_milestones=())
