"""DiNTS configuration: a dataclass with field metadata (description, minimum, maximum, choices)
and the ``paper`` (sec. 4.1) and ``tiny`` presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import setting

__all__ = ["DiNTSConfig", "PRESETS"]


@dataclass
class DiNTSConfig:
    """Settings of a DiNTS search; defaults are the paper's (sec. 4.1)."""

    # ---- search space ----
    num_layers: int = setting(12, "Layers L of the topology search space (super nodes after the stems).", minimum=1, maximum=24)
    num_depths: int = setting(4, "Resolution levels D (each 2x coarser); each super node has 3D-2 candidate edges.", minimum=2, maximum=5)
    stem_filters: int = setting(16, "Filters at full resolution; doubled at every 2x coarser level (paper: 16).", minimum=1, maximum=256)
    # ---- architecture losses ----
    sigma: float = setting(0.8, "Memory budget: target fraction of the memory with every edge on (eq. 10).", minimum=0.0, maximum=1.0)
    topology_weight: float = setting(0.001, "lambda: weight of the topology loss (eq. 11).", minimum=0.0, maximum=10.0)
    # ---- data ----
    patch_size: list[int] = setting([96, 96, 96], "Search patch size (x, y, z); each must be divisible by 2^D.", minimum=8, maximum=512)
    batch_size: int = setting(8, "Patches per step.", minimum=1, maximum=64)
    # ---- schedule (steps) ----
    warmup_steps: int = setting(1000, "Weight-only steps with the learning rate rising linearly from lr_start to lr_peak.", minimum=0, maximum=1_000_000)
    weight_only_steps: int = setting(10000, "Further weight-only steps after the warm-up, before the architecture is updated.", minimum=0, maximum=1_000_000)
    search_steps: int = setting(10000, "Steps that alternate weight (train1) and architecture (train2) updates.", minimum=1, maximum=1_000_000)
    lr_start: float = setting(0.025, "SGD learning rate at the start of the warm-up.", minimum=0.0, maximum=10.0)
    lr_peak: float = setting(0.2, "SGD learning rate at the end of the warm-up.", minimum=0.0, maximum=10.0)
    lr_milestones: list[int] = setting([8000, 16000], "Steps after the warm-up at which the SGD learning rate is multiplied by lr_gamma.", minimum=0, maximum=1_000_000)
    lr_gamma: float = setting(0.5, "Learning-rate decay factor at each milestone.", minimum=0.0, maximum=1.0)
    momentum: float = setting(0.9, "SGD momentum for the network weights.", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "SGD weight decay for the network weights.", minimum=0.0, maximum=1.0)
    arch_lr: float = setting(0.008, "Adam learning rate for the architecture parameters (alpha, p_e).", minimum=0.0, maximum=1.0)
    arch_weight_decay: float = setting(0.0, "Adam weight decay for the architecture parameters.", minimum=0.0, maximum=1.0)
    alpha_init_mean: float = setting(1.0, "Mean of the Gaussian initialisation of the op logits alpha (before softmax).", minimum=-10.0, maximum=10.0)
    alpha_init_std: float = setting(0.01, "Standard deviation of the op-logit initialisation.", minimum=0.0, maximum=10.0)
    edge_init_mean: float = setting(0.0, "Mean of the Gaussian initialisation of the edge logits (before sigmoid).", minimum=-10.0, maximum=10.0)
    edge_init_std: float = setting(0.01, "Standard deviation of the edge-logit initialisation.", minimum=0.0, maximum=10.0)
    # ---- retraining (used by the memory estimate and the decoded genotype) ----
    retrain_channel_multiplier: float = setting(2.0, "Filters of the retrained network relative to the search (paper: doubled).", minimum=0.25, maximum=8.0)
    retrain_batch_size: int = setting(16, "Patches per retraining step (paper: doubled).", minimum=1, maximum=128)
    # ---- bookkeeping ----
    snapshot_every: int = setting(100, "Steps between architecture snapshots sent to the dashboard (0: only at the start).", minimum=0, maximum=1_000_000)
    validate_every: int = setting(1000, "Steps between validations, and at the end (0: never).", minimum=0, maximum=1_000_000)
    checkpoint_every: int = setting(500, "Steps between checkpoints (0: only on cancel and at the end).", minimum=0, maximum=1_000_000)
    amp: bool = setting(True, "Mixed precision on CUDA (ignored on CPU).")
    channels_last: bool = setting(False, "Use the channels-last 3D memory format in the supernet.")
    # Search memory (issue 15). Neither changes a number the search computes, only what the
    # step holds between forward and backward and how long it takes.
    recompute_front: bool = setting(True, "Rebuild each node's resampled, concatenated edge inputs and their ReLU in backward instead of keeping them: about 30% less search activation memory for about 5-15% more step time (measured on a CPU). Off: plain autograd, which keeps them.")
    recompute_p3d_middle: bool = setting(False, "Rebuild the three pseudo-3D middle tensors in backward instead of keeping them: about 35% less search activation memory for one extra small conv per pseudo-3D op in backward. Needs recompute_front.")
    activation_checkpointing: bool = setting(False, "Activation checkpointing per lattice layer: keep only each layer's inputs and rerun the layer in backward. Least memory; costs about one more forward per step.")
    seed: int = setting(0, "Random seed.", minimum=0, maximum=2**31 - 1)

    def validate(self) -> None:
        """Cross-field checks; raises ``ValueError`` naming the field."""
        if len(self.patch_size) != 3:
            raise ValueError("patch_size: needs 3 sizes (x, y, z)")
        div = 2**self.num_depths
        for s in self.patch_size:
            if s % div:
                raise ValueError(f"patch_size: {s} is not divisible by 2^num_depths = {div}")
        if self.lr_milestones != sorted(self.lr_milestones):
            raise ValueError("lr_milestones: must be increasing")
        if round(self.stem_filters * self.retrain_channel_multiplier) < 1:
            raise ValueError("retrain_channel_multiplier: gives fewer than 1 filter")
        if self.recompute_p3d_middle and not self.recompute_front:
            raise ValueError("recompute_p3d_middle: needs recompute_front (the middle tensors are rebuilt from the rebuilt inputs)")


#: Named presets (overrides of the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "num_layers": 3,
        "num_depths": 3,
        "stem_filters": 4,
        "patch_size": [32, 32, 32],
        "batch_size": 2,
        "warmup_steps": 4,
        "weight_only_steps": 8,
        "search_steps": 24,
        "lr_milestones": [16, 28],
        "retrain_batch_size": 2,
        "snapshot_every": 4,
        "validate_every": 12,
        "checkpoint_every": 12,
        "amp": False,
    },
    # 2 CPU cores, ~15 min of search (issue 12 item 6). A 4-layer, 3-level lattice at 8
    # filters and 32^3 patches; 200 weight-only steps, then 400 search steps with a larger
    # architecture rate than the paper's (0.03 vs 0.008): a short search must move the
    # weights visibly off uniform (the run's architecture events report their entropy).
    # Retrain it with the shared retraining preset "cpu" (nnU-Net recipe, ~15 min).
    "cpu": {
        "num_layers": 4,
        "num_depths": 3,
        "stem_filters": 8,
        "patch_size": [32, 32, 32],
        "batch_size": 2,
        "warmup_steps": 20,
        "weight_only_steps": 180,
        "search_steps": 400,
        "lr_start": 0.01,
        "lr_peak": 0.05,
        "lr_milestones": [400],
        "arch_lr": 0.03,
        "retrain_batch_size": 2,
        "snapshot_every": 20,
        "validate_every": 200,
        "checkpoint_every": 100,
        "amp": False,
    },
}
