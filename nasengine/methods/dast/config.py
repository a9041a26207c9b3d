"""DAST configuration: a dataclass with field metadata and the ``paper`` and ``tiny`` presets,
plus DAST's retraining presets (sec. 4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...config import setting
from ...training.retrain import RETRAIN_PRESETS as SHARED_RETRAIN_PRESETS
from .ops import TRANSFORMER_DEFAULTS
from .transformer import check_heads

__all__ = ["DASTConfig", "PRESETS", "RETRAIN_PRESETS", "TRANSFORMER_FIELDS"]

#: Config fields that are the transformer op's parameters (same names).
TRANSFORMER_FIELDS: tuple[str, ...] = tuple(TRANSFORMER_DEFAULTS)


@dataclass
class DASTConfig:
    """Settings of a DAST search; defaults are the paper's (sec. 3-4), DiNTS's where DAST
    says it follows DiNTS (search space, schedule, losses)."""

    # ---- search space (DiNTS's lattice) ----
    num_layers: int = setting(12, "Layers L of the lattice (paper: 12).", minimum=1, maximum=24)
    num_depths: int = setting(4, "Resolution levels D (paper: 4); 3D-2 candidate edges per super node.", minimum=2, maximum=5)
    stem_filters: int = setting(16, "Filters at full resolution; doubled at every 2x coarser level (DiNTS: 16).", minimum=1, maximum=256)
    # ---- transformer op (sec. 3; open choices marked) ----
    tokens: int = setting(512, "Tokens T of every transformer op: the projector's output channels (paper: 512).", minimum=1, maximum=4096)
    grid: int = setting(16, "Edge g of the fixed grid the projector resizes to; g^3 is the token dimension (paper's attention map 512 x 16^3).", minimum=1, maximum=32)
    heads: int = setting(8, "Attention heads (paper: 8); must divide tokens and grid^3.", minimum=1, maximum=64)
    encoder_layers: int = setting(1, "Transformer encoder layers (open in the paper; HR-NAS: 1).", minimum=1, maximum=12, x_advanced=True)
    decoder_layers: int = setting(1, "Transformer decoder layers (open in the paper; HR-NAS: 1).", minimum=1, maximum=12, x_advanced=True)
    ffn_multiplier: int = setting(1, "FFN width as a multiple of the token dimension (open; HR-NAS: 1).", minimum=1, maximum=8, x_advanced=True)
    norm_first: bool = setting(False, "Pre-norm transformer layers (open; HR-NAS: post-norm).", x_advanced=True)
    projector_norm: Literal["batch", "instance"] = setting("batch", "Norm after the projector and the reverse projector (open; HR-NAS: batch).", x_advanced=True)
    outer_residual: bool = setting(False, "Add the op's input to its output (open; HR-NAS does; off: skip is its own op).", x_advanced=True)
    # ---- architecture losses ----
    sigma: float = setting(0.8, "Memory budget (DAST's lambda, DiNTS's sigma): target fraction of the memory with every edge on (paper: 0.2 / 0.5 / 0.8).", minimum=0.0, maximum=1.0)
    topology_weight: float = setting(0.001, "Weight of the topology loss (DiNTS eq. 11).", minimum=0.0, maximum=10.0)
    # ---- data ----
    patch_size: list[int] = setting([96, 96, 96], "Search patch size (x, y, z); each divisible by 2^D (DiNTS: 96).", minimum=8, maximum=512)
    batch_size: int = setting(8, "Patches per search step (DiNTS: 8).", minimum=1, maximum=64)
    # ---- schedule (steps), DiNTS's ----
    warmup_steps: int = setting(1000, "Weight-only steps with the learning rate rising linearly from lr_start to lr_peak.", minimum=0, maximum=1_000_000)
    weight_only_steps: int = setting(10000, "Further weight-only steps before the architecture is updated.", minimum=0, maximum=1_000_000)
    search_steps: int = setting(10000, "Steps that alternate weight (train1) and architecture (train2) updates.", minimum=1, maximum=1_000_000)
    lr_start: float = setting(0.025, "SGD learning rate at the start of the warm-up.", minimum=0.0, maximum=10.0)
    lr_peak: float = setting(0.2, "SGD learning rate at the end of the warm-up.", minimum=0.0, maximum=10.0)
    lr_milestones: list[int] = setting([8000, 16000], "Steps after the warm-up at which the SGD learning rate is multiplied by lr_gamma.", minimum=0, maximum=1_000_000)
    lr_gamma: float = setting(0.5, "Learning-rate decay factor at each milestone.", minimum=0.0, maximum=1.0)
    momentum: float = setting(0.9, "SGD momentum for the network weights.", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "SGD weight decay for the network weights.", minimum=0.0, maximum=1.0)
    arch_lr: float = setting(0.008, "Adam learning rate for the architecture parameters.", minimum=0.0, maximum=1.0)
    arch_weight_decay: float = setting(0.0, "Adam weight decay for the architecture parameters.", minimum=0.0, maximum=1.0)
    alpha_init_mean: float = setting(1.0, "Mean of the Gaussian initialisation of the op logits.", minimum=-10.0, maximum=10.0)
    alpha_init_std: float = setting(0.01, "Standard deviation of the op-logit initialisation.", minimum=0.0, maximum=10.0)
    edge_init_mean: float = setting(0.0, "Mean of the Gaussian initialisation of the edge logits.", minimum=-10.0, maximum=10.0)
    edge_init_std: float = setting(0.01, "Standard deviation of the edge-logit initialisation.", minimum=0.0, maximum=10.0)
    # ---- retraining (memory term, estimate and decoded genotype) ----
    retrain_channel_multiplier: float = setting(2.0, "Filters of the retrained network relative to the search (DiNTS: doubled).", minimum=0.25, maximum=8.0)
    retrain_batch_size: int = setting(2, "Patches per retraining step (paper: 2 per GPU).", minimum=1, maximum=128)
    retrain_patch_size: list[int] = setting([160, 160, 160], "Retraining patch (paper: 160^3); the memory term and estimate cost the retrained network here.", minimum=8, maximum=512)
    # ---- bookkeeping ----
    snapshot_every: int = setting(100, "Steps between architecture snapshots for the dashboard (0: only at the start).", minimum=0, maximum=1_000_000)
    validate_every: int = setting(1000, "Steps between validations, and at the end (0: never).", minimum=0, maximum=1_000_000)
    checkpoint_every: int = setting(500, "Steps between checkpoints (0: only on cancel and at the end).", minimum=0, maximum=1_000_000)
    amp: bool = setting(True, "Mixed precision on CUDA (ignored on CPU).")
    seed: int = setting(0, "Random seed.", minimum=0, maximum=2**31 - 1)

    def validate(self) -> None:
        """Cross-field checks; raises ``ValueError`` naming the field."""
        div = 2**self.num_depths
        for name in ("patch_size", "retrain_patch_size"):
            sizes = getattr(self, name)
            if len(sizes) != 3:
                raise ValueError(f"{name}: needs 3 sizes (x, y, z)")
            for s in sizes:
                if s % div:
                    raise ValueError(f"{name}: {s} is not divisible by 2^num_depths = {div}")
        if self.lr_milestones != sorted(self.lr_milestones):
            raise ValueError("lr_milestones: must be increasing")
        if round(self.stem_filters * self.retrain_channel_multiplier) < 1:
            raise ValueError("retrain_channel_multiplier: gives fewer than 1 filter")
        try:
            check_heads(self.tokens, self.grid, self.heads)
        except ValueError as exc:
            raise ValueError(f"heads: {exc}") from None

    def transformer_params(self) -> dict[str, Any]:
        """The transformer op's parameters (written on every transformer edge of a genotype)."""
        return {name: getattr(self, name) for name in TRANSFORMER_FIELDS}


#: Named presets (overrides of the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "num_layers": 3,
        "num_depths": 3,
        "stem_filters": 4,
        "tokens": 8,
        "grid": 4,
        "patch_size": [32, 32, 32],
        "batch_size": 2,
        "warmup_steps": 4,
        "weight_only_steps": 8,
        "search_steps": 24,
        "lr_milestones": [16, 28],
        "retrain_batch_size": 2,
        "retrain_patch_size": [32, 32, 32],
        "snapshot_every": 4,
        "validate_every": 12,
        "checkpoint_every": 12,
        "amp": False,
    },
}

#: Retraining presets. ``paper`` (sec. 4.1): patch 160^3, batch 2, a constant learning rate of
#: 1e-3 for 40,000 iterations. The optimiser is not stated: the shared SGD (momentum 0.9, as
#: DiNTS's retraining) is used, an assumption. ``small`` / ``tiny`` are the shared ones.
RETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"warmup_steps": 0, "steps": 40000, "lr_start": 1e-3, "lr_peak": 1e-3,
              "lr_milestones": [], "batch_size": 2, "patch_size": [160, 160, 160],
              "max_patch": 160},
    "small": dict(SHARED_RETRAIN_PRESETS["small"]),
    "tiny": dict(SHARED_RETRAIN_PRESETS["tiny"]),
}
