"""C2FNAS configuration (a dataclass with field metadata) and presets.

``paper``: sec. 4.1 as printed. Coarse: 12 cells (3 down, 3 up), k-means into 8 clusters, 2
initial topologies per cluster (the text; Algorithm 1 shows 1), 50 candidates, exploration 0.2;
each candidate trained from scratch with SGD (lr 0.02, momentum 0.9, weight decay 4e-5), 1000
warm-up steps from 0.0025, 20,000 steps halving at 8000 and 16,000, batch 8 of 96^3 patches,
Dice + CE, validated by sliding window at stride 16 (mean foreground Dice). Fine: the supernet
trained for twice the candidate steps with a uniformly sampled path per step, then 2000 random
colourings scored with its weights at stride 48. Filters: 32 in the first stem conv, 64 at
level 0 (both public re-implementations).

``tiny``: 5 cells with 2 downs and 2 ups (5 topologies, 2 clusters), 3 candidates of 3 steps,
a supernet of 6 steps and 3 sampled colourings, 32^3 patches, 8 channels: well under a minute
on 2 CPU cores.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...config import setting

__all__ = ["C2FNASConfig", "PRESETS"]


@dataclass
class C2FNASConfig:
    """Settings of a C2FNAS search; defaults are the paper's (sec. 4.1)."""

    # ---- spaces ----
    num_cells: int = setting(12, "Cells of the network (paper: 12).", minimum=2, maximum=24)
    depth: int = setting(3, "Down-sampling cells, and as many up-sampling ones (paper: 3).", minimum=1, maximum=5)
    base_channels: int = setting(64, "Filters of the level-0 cells (the first stem conv has half; doubled per down).", minimum=2, maximum=512, multiple_of=2)
    # ---- Algorithm 1 ----
    clusters: int = setting(8, "k of the k-means over the topology codes (paper: 8).", minimum=1, maximum=64)
    init_per_cluster: int = setting(2, "Random topologies trained first in each cluster (text: 2, Algorithm 1: 1).", minimum=1, maximum=16)
    candidates: int = setting(50, "Candidates trained from scratch in the coarse stage, l (paper: 50).", minimum=1, maximum=10_000)
    explore: float = setting(0.2, "Probability of a random cluster instead of the best one (paper: 0.2).", minimum=0.0, maximum=1.0)
    # ---- data ----
    patch_size: list[int] = setting([96, 96, 96], "Training patch (x, y, z); each divisible by 2^(depth + 1).", minimum=8, maximum=512)
    batch_size: int = setting(8, "Patches per step (paper: 8, one per GPU).", minimum=1, maximum=64)
    val_fraction: float = setting(0.2, "Share of cases held out for validation (paper: the last of 5 folds).", minimum=0.0, maximum=0.9)
    fg_oversample: float = setting(0.33, "Share of patches centred on foreground.", minimum=0.0, maximum=1.0)
    # ---- candidate training (coarse stage; the fine supernet uses it too) ----
    warmup_steps: int = setting(1000, "Warm-up steps, lr rising linearly from lr_start (paper: 1000).", minimum=0, maximum=1_000_000)
    steps: int = setting(20000, "Training steps per candidate after the warm-up (paper: 20,000).", minimum=1, maximum=1_000_000)
    lr_start: float = setting(0.0025, "SGD learning rate at the start of the warm-up (paper: 0.0025).", minimum=0.0, maximum=10.0)
    lr_peak: float = setting(0.02, "SGD learning rate after the warm-up (paper: 0.02).", minimum=0.0, maximum=10.0)
    lr_milestones: list[int] = setting([8000, 16000], "Steps after the warm-up at which the rate is multiplied by lr_gamma.", minimum=0, maximum=1_000_000)
    lr_gamma: float = setting(0.5, "Decay factor at each milestone (paper: 0.5).", minimum=0.0, maximum=1.0)
    momentum: float = setting(0.9, "SGD momentum (paper: 0.9).", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "SGD weight decay (paper: 4e-5).", minimum=0.0, maximum=1.0)
    val_stride: int = setting(16, "Sliding-window stride of a candidate's validation, voxels (paper: 16).", minimum=1, maximum=512)
    # Issue 12: candidates train with the state-of-practice recipe unless the paper preset asks
    # for the paper's own (the lr/momentum/decay fields above are the paper recipe's).
    candidate_recipe: str = setting("nnunet", "Recipe of each candidate's training: nnunet (SGD Nesterov 0.99, lr 0.01 poly, nnU-Net augmentation) or paper (the fields above).", choices=["nnunet", "paper"])
    # ---- fine stage ----
    fine_stage: bool = setting(True, "Search the cell ops on the best topology (off: return the coarse winner, all 3x3x3).")
    supernet_step_factor: int = setting(2, "Supernet steps as a multiple of a candidate's (paper: twice).", minimum=1, maximum=10)
    fine_candidates: int = setting(2000, "Random colourings scored with the supernet's weights, K (paper: 2000).", minimum=1, maximum=1_000_000)
    fine_val_stride: int = setting(48, "Sliding-window stride when scoring them (paper: 48).", minimum=1, maximum=512)
    # ---- optional third stage (sec. 5.3) ----
    scaling_multipliers: list[float] = setting([], "Channel multipliers tried on the final network, each trained from scratch (sec. 5.3: 0.25..2.0 step 0.25; empty: off).", minimum=0.05, maximum=8.0)
    # ---- retraining (memory estimate) ----
    retrain_batch_size: int = setting(8, "Patches per retraining step (memory estimate).", minimum=1, maximum=128)
    # ---- bookkeeping ----
    checkpoint_every: int = setting(500, "Steps between checkpoints of a candidate or the supernet (0: only on cancel and at the end).", minimum=0, maximum=1_000_000)
    sw_batch_size: int = setting(4, "Sliding-window patches per forward pass.", minimum=1, maximum=64)
    amp: bool = setting(True, "Mixed precision on CUDA (ignored on CPU).")
    seed: int = setting(0, "Random seed (clusters, sampling, initial weights, patches).", minimum=0, maximum=2**31 - 1)

    @property
    def divisor(self) -> int:
        """Patch edges must be multiples of this: the stem halves, each down halves."""
        return 2 ** (self.depth + 1)

    def validate(self) -> None:
        """Cross-field checks; raises ``ValueError`` naming the field."""
        if len(self.patch_size) != 3:
            raise ValueError("patch_size: needs 3 sizes (x, y, z)")
        for s in self.patch_size:
            if s % self.divisor:
                raise ValueError(f"patch_size: {s} is not divisible by 2^(depth + 1) = {self.divisor}")
        if 2 * self.depth > self.num_cells:
            raise ValueError(f"depth: {self.depth} downs and ups need at least {2 * self.depth} cells")
        if self.clusters > math.comb(self.num_cells, 2 * self.depth):
            raise ValueError(f"clusters: more clusters than the {math.comb(self.num_cells, 2 * self.depth)} topologies")
        if self.lr_milestones != sorted(self.lr_milestones):
            raise ValueError("lr_milestones: must be increasing")
        if max(self.val_stride, self.fine_val_stride) > min(self.patch_size):
            raise ValueError("val_stride: a stride larger than the patch leaves voxels unseen")


#: Named presets (overrides of the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"candidate_recipe": "paper"},
    "tiny": {
        "num_cells": 5, "depth": 2, "base_channels": 8,
        "clusters": 2, "init_per_cluster": 1, "candidates": 3,
        "patch_size": [32, 32, 32], "batch_size": 2,
        "warmup_steps": 1, "steps": 2, "lr_start": 0.01, "lr_peak": 0.02, "lr_milestones": [],
        "val_stride": 16, "supernet_step_factor": 2, "fine_candidates": 3, "fine_val_stride": 32,
        "retrain_batch_size": 2, "checkpoint_every": 2, "amp": False,
    },
}
