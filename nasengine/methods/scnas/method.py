"""The SCNAS plug-in (``registry["scnas"]``): config and presets, memory estimate, the
supernet and schedule for the shared bi-level loop, the paper's optimisers and loss, and the
network builder of its genotypes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..base import DataSettings, MemoryEstimate, SearchData, SearchMethod
from .config import PRESETS, SCNASConfig
from .memory import estimate_memory
from .supernet import SCNASSupernet

__all__ = ["SCNASMethod", "PAPER"]

PAPER = ("S. Kim, I. Kim, S. Lim, W. Baek, C. Kim, H. Cho, B. Yoon, T. Kim. Scalable Neural "
         "Architecture Search for 3D Medical Image Segmentation. MICCAI 2019 (arXiv 1906.05956).")


class SCNASMethod(SearchMethod):
    """Four cell types of a U-Net searched by Gumbel-softmax pair sampling (SCNAS)."""

    name = "scnas"
    paper = PAPER
    description = ("Searches four cell types (encoder-normal, reduction, decoder-normal, expansion; "
                   "4-node DAGs, 8 ops per edge) of a 3D U-Net; each edge computes only the two ops "
                   "of a Gumbel-softmax pair draw per step (Algorithm 1), with the temperature annealed.")
    config_class = SCNASConfig
    presets = PRESETS
    default_preset = "paper"

    def estimate_memory(self, config: SCNASConfig, in_channels: int, out_channels: int) -> MemoryEstimate:
        return estimate_memory(config, in_channels, out_channels)

    def data_settings(self, config: SCNASConfig) -> DataSettings:
        settings = super().data_settings(config)
        return dataclasses.replace(settings, divisor=2**config.depth, patch_size=tuple(config.patch_size),
                                   arch_split=tuple(float(v) for v in config.arch_split))

    def build_supernet(self, config: SCNASConfig, in_channels: int, out_channels: int) -> SCNASSupernet:
        """The supernet; its temperature anneals over the architecture steps."""
        return SCNASSupernet(
            in_channels, out_channels, config.stem_channels, config.depth,
            tau_max=config.tau_max, tau_min=config.tau_min, tau_schedule=config.tau_schedule,
            anneal_start=config.warmup_steps + config.weight_only_steps, anneal_steps=config.search_steps,
            alpha_init_std=config.alpha_init_std, genotype_stem_channels=config.retrain_stem_channels,
            genotype_patch_size=list(config.patch_size),
            genotype_meta={"search_patch_size": list(config.patch_size), "tau_schedule": config.tau_schedule,
                           "tau_max": config.tau_max, "tau_min": config.tau_min, "loss": config.loss})

    def search_schedule(self, config: SCNASConfig):
        from ...training.search_loop import SearchSchedule

        return SearchSchedule(
            warmup_steps=config.warmup_steps, weight_only_steps=config.weight_only_steps,
            search_steps=config.search_steps, lr_start=config.weight_lr_start if config.warmup_steps else config.weight_lr,
            lr_peak=config.weight_lr, lr_milestones=tuple(config.lr_milestones), lr_gamma=config.lr_gamma,
            momentum=config.weight_momentum, weight_decay=config.weight_decay, arch_lr=config.arch_lr,
            arch_weight_decay=config.arch_weight_decay, snapshot_every=config.snapshot_every,
            validate_every=config.validate_every, checkpoint_every=config.checkpoint_every, amp=config.amp)

    def make_optimisers(self, config: SCNASConfig, weights: list[nn.Parameter], arch: list[nn.Parameter]):
        """The paper's: Adam for the weights (betas as printed, see :mod:`.config`) or SGD, and
        Adam (0.003, betas (0.5, 0.999)) for alpha. The loop sets the weight rate each step."""
        if config.weight_optimiser == "adam":
            w_opt = torch.optim.Adam(weights, lr=config.weight_lr, betas=tuple(config.weight_betas),
                                     weight_decay=config.weight_decay)
        else:
            w_opt = torch.optim.SGD(weights, lr=config.weight_lr, momentum=config.weight_momentum,
                                    weight_decay=config.weight_decay)
        a_opt = torch.optim.Adam(arch, lr=config.arch_lr, betas=tuple(config.arch_betas),
                                 weight_decay=config.arch_weight_decay) if arch else None
        return w_opt, a_opt

    def loss_fn(self, config: SCNASConfig):
        if config.loss == "jaccard":
            from .losses import JaccardLoss

            return JaccardLoss()
        return None  # the shared DiceCELoss

    def search(self, data: SearchData, config: SCNASConfig, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False) -> dict[str, Any]:
        """Seed, build the supernet and run the shared bi-level loop (weights on the 4 parts,
        alpha on the 1 part of the training cases)."""
        torch.manual_seed(config.seed)
        return super().search(data, config, reporter, checkpoint_dir, cancel=cancel, resume=resume)

    def build_network(self, genotype: dict[str, Any]) -> nn.Module:
        from .network import build_network

        return build_network(genotype)
