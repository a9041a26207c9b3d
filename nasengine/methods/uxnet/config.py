"""UXNet configuration (a dataclass with field metadata) and presets.

``paper``: what sec. 3.1 states, and our choice where it is silent (marked "choice"):

- weights: Adam, lr 3e-4, betas (0.9, 0.99) (stated); no weight decay (none stated);
- alpha and beta: Adam, lr 3e-3 (stated). The sentence goes on "and weight ..." and is cut off
  there: the weight decay is a choice, 1e-3 (DARTS' architecture weight decay, also NNI's and
  FairDARTS'), and so are the betas, (0.5, 0.999) (DARTS' architecture Adam);
- alpha initialised to 1 and beta to 0 (stated);
- the task loss is cross-entropy (stated for trainA; trainB's "L_trainB" is read as the same
  loss), with Dice + cross-entropy as an option;
- J = -(sigma(beta) - 0.5)^2 (eq. 2) joins the architecture loss with weight
  ``polarisation_weight``, cut off in the paper: a choice, 1.0 on J averaged over the gates
  (FairDARTS, whose zero-one loss is the same term, weighs its mean by 10 with SGD-scale
  losses; 1 keeps J's gradient at the scale of the task loss's, and the field is there to turn
  it up). ``bench/uxnet_polarisation.py`` (demo data, 120 steps, arch lr 0.03): weight 0 leaves
  2 of 9 gates polarised, weight 1 all 9 at the same task loss (1.82), weight 10 all 9 but at a
  worse task loss (2.17) and with too few gates kept for a path. Constant over the search: the paper has no ramp (``polarisation_ramp: "linear"``
  gives DiNTS' t/t_all if wanted);
- tau = 0.75 (the paper's best; its ablation tried 0.60 and 0.90);
- trainA / trainB: the paper splits the training cases in two; we split them 1:1;
- depth 4 (Fig. 3: levels 0-4). Channels, patch, batch size and the number of steps are in an
  appendix that the text does not have: choices, C = 16 at level 0 (doubling per level),
  96^3 patches of batch 2 (about 14 GB of supernet activations and parameters; the paper
  searched on two 12 GB TitanXP), 20,000 bi-level steps, retraining at 2 x 96^3.

``tiny``: 2 CPU cores, 32^3 patches, C = 4, depth 2, 1 + 3 steps: a whole search in well under
a minute. tau is 0 there: four steps cannot move a gate from 0.5 to 0.75 (Adam moves beta by
about lr a step), so tau 0.75 would always fall back to one path; tau 0 keeps every
connection, the network the retrain memory forecast describes (pruning itself is pinned by
tests on hand-made gates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import setting

__all__ = ["UXNetConfig", "PRESETS"]


@dataclass
class UXNetConfig:
    """Settings of a UXNet search; defaults are the ``paper`` preset (see the module docstring)."""

    # ---- search space ----
    depth: int = setting(4, "2x downsamplings of the encoder (paper: 4, levels N(0,0)..N(0,4)); stage i has levels 0..depth-i.", minimum=1, maximum=5)
    channels: int = setting(16, "Channels C at level 0; level l has C x 2^l (the paper gives none: a choice).", minimum=1, maximum=256)
    encoder_chain_constant: bool = setting(True, "The encoder SBB chain N(0,j-1) -> N(0,j) is constant (Fig. 3's constant connections); off: it is gated too.")
    # ---- data ----
    patch_size: list[int] = setting([96, 96, 96], "Search patch (x, y, z); each divisible by 2^depth (the paper's is in its missing appendix).", minimum=8, maximum=512)
    batch_size: int = setting(2, "Patches per step.", minimum=1, maximum=64)
    arch_split: list[float] = setting([1.0, 1.0], "trainA : trainB share of the training cases (weights : architecture).", minimum=0.0, maximum=100.0)
    val_fraction: float = setting(0.2, "Share of cases held out for validation (paper: 5-fold CV, one fold).", minimum=0.0, maximum=0.9)
    fg_oversample: float = setting(0.33, "Share of patches centred on foreground.", minimum=0.0, maximum=1.0)
    # ---- schedule (steps) ----
    weight_only_steps: int = setting(0, "Weight-only steps before the architecture is updated (the paper has none).", minimum=0, maximum=1_000_000)
    search_steps: int = setting(20000, "Steps alternating a weight (trainA) and an architecture (trainB) update.", minimum=1, maximum=1_000_000)
    # ---- optimisers ----
    weight_lr: float = setting(3e-4, "Adam learning rate of the weights (paper: 0.0003).", minimum=0.0, maximum=10.0)
    weight_betas: list[float] = setting([0.9, 0.99], "Adam betas of the weights (paper: 0.9, 0.99).", minimum=0.0, maximum=0.999999)
    weight_decay: float = setting(0.0, "Weight decay of the weights (the paper gives none).", minimum=0.0, maximum=1.0)
    arch_lr: float = setting(3e-3, "Adam learning rate of alpha and beta (paper: 0.003).", minimum=0.0, maximum=1.0)
    arch_betas: list[float] = setting([0.5, 0.999], "Adam betas of alpha and beta (cut off in the paper; DARTS: 0.5, 0.999).", minimum=0.0, maximum=0.999999)
    arch_weight_decay: float = setting(1e-3, "Adam weight decay of alpha and beta (cut off in the paper; DARTS: 1e-3).", minimum=0.0, maximum=1.0)
    # ---- architecture loss and derivation ----
    polarisation_weight: float = setting(1.0, "Weight of J = -(sigma(beta) - 0.5)^2, averaged over the gates (cut off in the paper; a choice).", minimum=0.0, maximum=1000.0)
    polarisation_ramp: str = setting("constant", "J's weight over the architecture steps: constant (the paper) or linear t/t_all (DiNTS' ramp).", choices=("constant", "linear"))
    tau: float = setting(0.75, "Keep a connection when sigma(beta) >= tau (paper: 0.75; ablation 0.60, 0.90).", minimum=0.0, maximum=1.0)
    loss: str = setting("ce", "Task loss: cross-entropy (the paper) or Dice + cross-entropy.", choices=("ce", "dice_ce"))
    # ---- retraining (memory estimate) ----
    retrain_batch_size: int = setting(2, "Patches per retraining step (for the memory estimate).", minimum=1, maximum=128)
    retrain_patch_size: list[int] = setting([96, 96, 96], "Retraining patch (for the memory estimate).", minimum=8, maximum=512)
    # ---- bookkeeping ----
    snapshot_every: int = setting(100, "Steps between architecture snapshots sent to the dashboard (0: only at the start).", minimum=0, maximum=1_000_000)
    validate_every: int = setting(1000, "Steps between validations, and at the end (0: never).", minimum=0, maximum=1_000_000)
    checkpoint_every: int = setting(500, "Steps between checkpoints (0: only on cancel and at the end).", minimum=0, maximum=1_000_000)
    amp: bool = setting(True, "Mixed precision on CUDA (ignored on CPU).")
    seed: int = setting(0, "Random seed.", minimum=0, maximum=2**31 - 1)

    def validate(self) -> None:
        """Cross-field checks; raises ``ValueError`` naming the field."""
        div = 2**self.depth
        for name in ("patch_size", "retrain_patch_size"):
            sizes = getattr(self, name)
            if len(sizes) != 3:
                raise ValueError(f"{name}: needs 3 sizes (x, y, z)")
            for s in sizes:
                if s % div:
                    raise ValueError(f"{name}: {s} is not divisible by 2^depth = {div}")
        for name in ("weight_betas", "arch_betas"):
            if len(getattr(self, name)) != 2:
                raise ValueError(f"{name}: needs 2 values (beta1, beta2)")
        if len(self.arch_split) != 2 or min(self.arch_split) <= 0:
            raise ValueError("arch_split: needs 2 positive shares (trainA, trainB)")


#: Named presets (overrides of the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tiny": {
        "depth": 2,
        "channels": 4,
        "patch_size": [32, 32, 32],
        "batch_size": 2,
        "weight_only_steps": 1,
        "search_steps": 3,
        "tau": 0.0,
        "loss": "dice_ce",
        "retrain_batch_size": 2,
        "retrain_patch_size": [32, 32, 32],
        "snapshot_every": 2,
        "validate_every": 0,
        "checkpoint_every": 2,
        "amp": False,
    },
}
