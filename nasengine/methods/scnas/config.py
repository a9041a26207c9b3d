"""SCNAS configuration (a dataclass with field metadata) and presets.

``paper``: sec. 3 of the paper as printed. Search 200 epochs at batch 4 (BraTS: ~310 weight
cases per fold after the 4:1 split, ~78 steps per epoch -> 15,600 steps), stem 48 (retrain
68), patch 128^3, 3 downsamplings, weights Adam lr 0.025 with betas (0.1, 0.001), alpha Adam
lr 0.003 betas (0.5, 0.999), Jaccard distance loss, 4:1 weights/architecture split.

The printed weight betas look garbled (beta2 = 0.001 makes Adam's second moment a one-step
estimate, and 0.025 is DARTS' SGD rate): they are kept literally in ``paper``;
``sensible`` beside it uses DARTS' SGD (lr 0.025, momentum 0.9, weight decay 3e-4) for the
weights and is otherwise the paper's. The paper's "lr / 10 after a 20-epoch plateau of the
training loss" is not modelled: the shared loop sets the weight rate from a step schedule
(``lr_milestones`` / ``lr_gamma``), empty in ``paper``.

``tiny``: 2 CPU cores, 32^3 patches, stem 8, 2 downsamplings: about a second per step and
a whole search in well under a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import setting

__all__ = ["SCNASConfig", "PRESETS"]


@dataclass
class SCNASConfig:
    """Settings of an SCNAS search; defaults are the paper's (sec. 3)."""

    # ---- search space ----
    depth: int = setting(3, "2x downsamplings of the U-Net (paper: 3; 2 x depth + 1 cells, plus the inter-cell).", minimum=1, maximum=5)
    stem_channels: int = setting(48, "Stem channels F during the search (paper: 48); a cell at level l outputs F x 2^l, 4 nodes of a quarter each.", minimum=4, maximum=256, multiple_of=4)
    retrain_stem_channels: int = setting(68, "Stem channels of the derived network (paper: 68, FLOPs matched to the 3D U-ResNet).", minimum=4, maximum=512, multiple_of=4)
    # ---- data ----
    patch_size: list[int] = setting([128, 128, 128], "Search patch (x, y, z); each divisible by 2^depth.", minimum=8, maximum=512)
    batch_size: int = setting(4, "Patches per step (paper: 4, one per GPU).", minimum=1, maximum=64)
    arch_split: list[float] = setting([4.0, 1.0], "Weights : architecture share of the training cases (paper: 4:1).", minimum=0.0, maximum=100.0)
    val_fraction: float = setting(0.2, "Share of cases held out for validation (paper: 5-fold CV, one fold).", minimum=0.0, maximum=0.9)
    fg_oversample: float = setting(0.33, "Share of patches centred on foreground.", minimum=0.0, maximum=1.0)
    # ---- schedule (steps) ----
    warmup_steps: int = setting(0, "Weight-only warm-up steps with the rate rising from weight_lr_start to weight_lr (the paper has none).", minimum=0, maximum=1_000_000)
    weight_only_steps: int = setting(0, "Further weight-only steps before alpha is updated (the paper has none).", minimum=0, maximum=1_000_000)
    search_steps: int = setting(15600, "Steps alternating a weight and an architecture update (paper: 200 epochs).", minimum=1, maximum=1_000_000)
    # ---- optimisers ----
    weight_optimiser: str = setting("adam", "Optimiser of the network weights (paper: Adam).", choices=("adam", "sgd"))
    weight_lr: float = setting(0.025, "Learning rate of the weights (paper: 0.025).", minimum=0.0, maximum=10.0)
    weight_lr_start: float = setting(0.0, "Rate at the start of the warm-up.", minimum=0.0, maximum=10.0)
    weight_betas: list[float] = setting([0.1, 0.001], "Adam betas of the weights (paper, as printed: (0.1, 0.001); they look garbled).", minimum=0.0, maximum=0.999999)
    weight_momentum: float = setting(0.9, "SGD momentum of the weights (sgd only).", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(0.0, "Weight decay of the weights (paper: none given).", minimum=0.0, maximum=1.0)
    lr_milestones: list[int] = setting([], "Steps after the warm-up at which the weight rate is multiplied by lr_gamma.", minimum=0, maximum=1_000_000)
    lr_gamma: float = setting(0.1, "Weight-rate decay factor at each milestone (paper: /10 on a plateau).", minimum=0.0, maximum=1.0)
    arch_lr: float = setting(0.003, "Adam learning rate of alpha (paper: 0.003).", minimum=0.0, maximum=1.0)
    arch_betas: list[float] = setting([0.5, 0.999], "Adam betas of alpha (paper: (0.5, 0.999)).", minimum=0.0, maximum=0.999999)
    arch_weight_decay: float = setting(0.0, "Adam weight decay of alpha (paper: none given).", minimum=0.0, maximum=1.0)
    alpha_init_std: float = setting(1e-3, "alpha ~ N(0, std) at the start (DARTS: 1e-3; the paper gives none).", minimum=0.0, maximum=10.0)
    # ---- Gumbel temperature ----
    tau_max: float = setting(10.0, "Temperature at the first architecture step (GDAS: 10; the paper gives no schedule).", minimum=1e-3, maximum=100.0)
    tau_min: float = setting(0.1, "Temperature at the last architecture step (GDAS: 0.1).", minimum=1e-3, maximum=100.0)
    tau_schedule: str = setting("linear", "Annealing of the temperature over the architecture steps.", choices=("linear", "exponential"))
    # ---- loss ----
    loss: str = setting("jaccard", "Segmentation loss: the paper's Jaccard distance (soft, foreground classes), or Dice + cross-entropy.", choices=("jaccard", "dice_ce"))
    # ---- retraining (memory estimate and the derived genotype) ----
    retrain_batch_size: int = setting(8, "Patches per retraining step (paper: 8).", minimum=1, maximum=128)
    # ---- bookkeeping ----
    snapshot_every: int = setting(100, "Steps between architecture snapshots sent to the dashboard (0: only at the start).", minimum=0, maximum=1_000_000)
    validate_every: int = setting(1000, "Steps between validations, and at the end (0: never).", minimum=0, maximum=1_000_000)
    checkpoint_every: int = setting(500, "Steps between checkpoints (0: only on cancel and at the end).", minimum=0, maximum=1_000_000)
    amp: bool = setting(True, "Mixed precision on CUDA (ignored on CPU).")
    seed: int = setting(0, "Random seed.", minimum=0, maximum=2**31 - 1)

    def validate(self) -> None:
        """Cross-field checks; raises ``ValueError`` naming the field."""
        if len(self.patch_size) != 3:
            raise ValueError("patch_size: needs 3 sizes (x, y, z)")
        div = 2**self.depth
        for s in self.patch_size:
            if s % div:
                raise ValueError(f"patch_size: {s} is not divisible by 2^depth = {div}")
        for name in ("weight_betas", "arch_betas"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"{name}: needs 2 values (beta1, beta2)")
        if len(self.arch_split) != 2 or min(self.arch_split) <= 0:
            raise ValueError("arch_split: needs 2 positive shares (weights, architecture)")
        if self.tau_min > self.tau_max:
            raise ValueError("tau_min: must not exceed tau_max")
        if self.lr_milestones != sorted(self.lr_milestones):
            raise ValueError("lr_milestones: must be increasing")


#: Named presets (overrides of the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "sensible": {"weight_optimiser": "sgd", "weight_lr": 0.025, "weight_momentum": 0.9, "weight_decay": 3e-4},
    "tiny": {
        "depth": 2,
        "stem_channels": 8,
        "retrain_stem_channels": 8,
        "patch_size": [32, 32, 32],
        "batch_size": 2,
        "warmup_steps": 0,
        "weight_only_steps": 2,
        "search_steps": 8,
        "weight_optimiser": "adam",
        "weight_lr": 0.003,
        "weight_betas": [0.9, 0.999],
        "tau_max": 5.0,
        "tau_min": 0.5,
        "loss": "dice_ce",
        "retrain_batch_size": 2,
        "snapshot_every": 2,
        "validate_every": 10,
        "checkpoint_every": 5,
        "amp": False,
    },
}
