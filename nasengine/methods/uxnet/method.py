"""The UXNet plug-in (``registry["uxnet"]``): config and presets, memory estimate, the
supernet and schedule for the shared bi-level loop, the paper's optimisers and loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..base import DataSettings, MemoryEstimate, SearchData, SearchMethod
from .config import PRESETS, UXNetConfig
from .memory import estimate_memory
from .supernet import UXNetSupernet

__all__ = ["UXNetMethod", "PAPER", "cross_entropy"]

PAPER = ("Y. Ji, R. Zhang, Z. Li, J. Ren, S. Zhang, P. Luo. UXNet: Searching Multi-level Feature "
         "Aggregation for 3D Medical Image Segmentation. MICCAI 2020.")


def cross_entropy(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """The paper's task loss. Shapes: ``logits [B, K, *S]``, ``label [B, 1, *S]`` -> scalar."""
    return F.cross_entropy(logits.float(), label[:, 0].long())


class UXNetMethod(SearchMethod):
    """Searchable building blocks and sigmoid-gated multi-scale aggregation (UXNet)."""

    name = "uxnet"
    paper = PAPER
    description = ("UXNet (Ji et al., MICCAI 2020; not '3D UX-Net', Lee et al. 2022, a large-kernel "
                   "ConvNet): searches the op of each layer of its building blocks (7 normal, 3 "
                   "reduction, 2 expansion ops, softmax-weighted) and which multi-scale connections "
                   "of a stage x level graph survive (sigmoid gates pushed to 0 or 1 by "
                   "J = -(sigma(beta) - 0.5)^2, pruned at a threshold tau).")
    config_class = UXNetConfig
    presets = PRESETS
    default_preset = "paper"

    def estimate_memory(self, config: UXNetConfig, in_channels: int, out_channels: int) -> MemoryEstimate:
        return estimate_memory(config, in_channels, out_channels)

    def data_settings(self, config: UXNetConfig) -> DataSettings:
        settings = super().data_settings(config)
        return dataclasses.replace(settings, divisor=2**config.depth, patch_size=tuple(config.patch_size),
                                   arch_split=tuple(float(v) for v in config.arch_split))

    def build_supernet(self, config: UXNetConfig, in_channels: int, out_channels: int) -> UXNetSupernet:
        return UXNetSupernet(
            in_channels, out_channels, config.channels, config.depth,
            encoder_chain_constant=config.encoder_chain_constant, tau=config.tau,
            genotype_patch_size=list(config.patch_size),
            genotype_meta={"search_patch_size": list(config.patch_size), "loss": config.loss,
                           "polarisation_weight": config.polarisation_weight,
                           "polarisation_ramp": config.polarisation_ramp})

    def search_schedule(self, config: UXNetConfig):
        """No warm-up, a constant weight rate; J weighted by ``polarisation_weight`` with the
        configured ramp (constant unless asked)."""
        from ...training.search_loop import SearchSchedule

        return SearchSchedule(
            warmup_steps=0, weight_only_steps=config.weight_only_steps, search_steps=config.search_steps,
            lr_start=config.weight_lr, lr_peak=config.weight_lr, lr_milestones=(), lr_gamma=1.0,
            weight_decay=config.weight_decay, arch_lr=config.arch_lr, arch_weight_decay=config.arch_weight_decay,
            snapshot_every=config.snapshot_every, validate_every=config.validate_every,
            checkpoint_every=config.checkpoint_every, amp=config.amp,
            regulariser_weights={"polarisation": float(config.polarisation_weight)},
            regulariser_ramps={"polarisation": config.polarisation_ramp})

    def make_optimisers(self, config: UXNetConfig, weights: list[nn.Parameter], arch: list[nn.Parameter]):
        """Adam for the weights (3e-4, betas (0.9, 0.99)) and Adam for alpha and beta (3e-3;
        betas and weight decay are choices, see :mod:`.config`)."""
        w_opt = torch.optim.Adam(weights, lr=config.weight_lr, betas=tuple(config.weight_betas),
                                 weight_decay=config.weight_decay)
        a_opt = torch.optim.Adam(arch, lr=config.arch_lr, betas=tuple(config.arch_betas),
                                 weight_decay=config.arch_weight_decay) if arch else None
        return w_opt, a_opt

    def loss_fn(self, config: UXNetConfig):
        return cross_entropy if config.loss == "ce" else None  # None: the shared DiceCELoss

    def search(self, data: SearchData, config: UXNetConfig, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False) -> dict[str, Any]:
        """Seed, build the supernet and run the shared bi-level loop (weights on trainA,
        alpha and beta on trainB)."""
        torch.manual_seed(config.seed)
        return super().search(data, config, reporter, checkpoint_dir, cancel=cancel, resume=resume)
