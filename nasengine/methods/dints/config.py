"""DiNTS configuration: a dataclass with field metadata (description, minimum, maximum, choices)
and the ``paper`` (sec. 4.1) and ``tiny`` presets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DiNTSConfig", "PRESETS"]


def _f(default: Any, description: str, minimum=None, maximum=None, choices=None, list_default: bool = False):
    meta: dict[str, Any] = {"description": description}
    if minimum is not None:
        meta["minimum"] = minimum
    if maximum is not None:
        meta["maximum"] = maximum
    if choices is not None:
        meta["choices"] = list(choices)
    if list_default:
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DiNTSConfig:
    """Settings of a DiNTS search; defaults are the paper's (sec. 4.1)."""

    # ---- search space ----
    num_layers: int = _f(12, "Layers L of the topology search space (super nodes after the stems).", 1, 24)
    num_depths: int = _f(4, "Resolution levels D (each 2x coarser); each super node has 3D-2 candidate edges.", 2, 5)
    stem_filters: int = _f(16, "Filters at full resolution; doubled at every 2x coarser level (paper: 16).", 1, 256)
    # ---- architecture losses ----
    sigma: float = _f(0.8, "Memory budget: target fraction of the memory with every edge on (eq. 10).", 0.0, 1.0)
    topology_weight: float = _f(0.001, "lambda: weight of the topology loss (eq. 11).", 0.0, 10.0)
    # ---- data ----
    patch_size: list[int] = _f([96, 96, 96], "Search patch size (x, y, z); each must be divisible by 2^D.", 8, 512, list_default=True)
    batch_size: int = _f(8, "Patches per step.", 1, 64)
    # ---- schedule (steps) ----
    warmup_steps: int = _f(1000, "Weight-only steps with the learning rate rising linearly from lr_start to lr_peak.", 0, 1_000_000)
    weight_only_steps: int = _f(10000, "Further weight-only steps after the warm-up, before the architecture is updated.", 0, 1_000_000)
    search_steps: int = _f(10000, "Steps that alternate weight (train1) and architecture (train2) updates.", 1, 1_000_000)
    lr_start: float = _f(0.025, "SGD learning rate at the start of the warm-up.", 0.0, 10.0)
    lr_peak: float = _f(0.2, "SGD learning rate at the end of the warm-up.", 0.0, 10.0)
    lr_milestones: list[int] = _f([8000, 16000], "Steps after the warm-up at which the SGD learning rate is multiplied by lr_gamma.", 0, 1_000_000, list_default=True)
    lr_gamma: float = _f(0.5, "Learning-rate decay factor at each milestone.", 0.0, 1.0)
    momentum: float = _f(0.9, "SGD momentum for the network weights.", 0.0, 1.0)
    weight_decay: float = _f(4e-5, "SGD weight decay for the network weights.", 0.0, 1.0)
    arch_lr: float = _f(0.008, "Adam learning rate for the architecture parameters (alpha, p_e).", 0.0, 1.0)
    arch_weight_decay: float = _f(0.0, "Adam weight decay for the architecture parameters.", 0.0, 1.0)
    alpha_init_mean: float = _f(1.0, "Mean of the Gaussian initialisation of the op logits alpha (before softmax).", -10.0, 10.0)
    alpha_init_std: float = _f(0.01, "Standard deviation of the op-logit initialisation.", 0.0, 10.0)
    edge_init_mean: float = _f(0.0, "Mean of the Gaussian initialisation of the edge logits (before sigmoid).", -10.0, 10.0)
    edge_init_std: float = _f(0.01, "Standard deviation of the edge-logit initialisation.", 0.0, 10.0)
    # ---- retraining (used by the memory estimate and the decoded genotype) ----
    retrain_channel_multiplier: float = _f(2.0, "Filters of the retrained network relative to the search (paper: doubled).", 0.25, 8.0)
    retrain_batch_size: int = _f(16, "Patches per retraining step (paper: doubled).", 1, 128)
    # ---- bookkeeping ----
    snapshot_every: int = _f(100, "Steps between architecture snapshots sent to the dashboard.", 1, 1_000_000)
    validate_every: int = _f(1000, "Steps between validations.", 1, 1_000_000)
    checkpoint_every: int = _f(500, "Steps between checkpoints.", 1, 1_000_000)
    amp: bool = _f(True, "Mixed precision on CUDA (ignored on CPU).")
    channels_last: bool = _f(False, "Use the channels-last 3D memory format in the supernet.")
    seed: int = _f(0, "Random seed.", 0, 2**31 - 1)

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
}
