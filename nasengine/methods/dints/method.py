"""The DiNTS plug-in (``registry["dints"]``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ...lattice.space import get_space
from ...training.retrain import RETRAIN_PRESETS
from ...training.search_loop import SearchSchedule
from ..base import DataSettings, MemoryEstimate, SearchData, SearchMethod
from .config import PRESETS, DiNTSConfig
from .memory import estimate_memory, op_cost_table, retrain_filters, search_recompute_mode
from .model_search import DiNTSSupernet

__all__ = ["DiNTSMethod"]

PAPER = ("Y. He, D. Yang, H. Roth, C. Zhao, D. Xu. DiNTS: Differentiable Neural Network Topology "
         "Search for 3D Medical Image Segmentation. CVPR 2021.")


class DiNTSMethod(SearchMethod):
    """Differentiable multi-path topology + cell search with a memory budget (DiNTS)."""

    name = "dints"
    paper = PAPER
    description = ("Searches a multi-path topology over an L x D multi-resolution lattice and one "
                   "op per edge, with entropy, topology and memory-budget losses and a decoding "
                   "that always yields a feasible network.")
    config_class = DiNTSConfig
    presets = PRESETS
    default_preset = "paper"
    #: The shared retrain presets are DiNTS's (sec. 4.1: 1k warm-up + 40k steps, SGD 0.025 -> 0.2).
    retrain_presets = RETRAIN_PRESETS

    def estimate_memory(self, config: DiNTSConfig, in_channels: int, out_channels: int) -> MemoryEstimate:
        return estimate_memory(config, in_channels, out_channels)

    def data_settings(self, config: DiNTSConfig) -> DataSettings:
        settings = super().data_settings(config)
        return dataclasses.replace(settings, divisor=2**config.num_depths)

    def build_supernet(self, config: DiNTSConfig, in_channels: int, out_channels: int) -> DiNTSSupernet:
        """The supernet of ``config``; the memory loss uses the retrain op costs (channels x
        ``retrain_channel_multiplier`` at the search patch), as the budget is for retraining."""
        space = get_space(config.num_depths)
        fr = retrain_filters(config.stem_filters, config.retrain_channel_multiplier)
        op_costs, edge_costs = op_cost_table(space, fr, config.patch_size)
        return DiNTSSupernet(
            in_channels, out_channels, config.num_layers, config.num_depths, config.stem_filters,
            op_costs=op_costs, edge_costs=edge_costs,
            sigma=config.sigma, topology_weight=config.topology_weight,
            alpha_init=(config.alpha_init_mean, config.alpha_init_std),
            edge_init=(config.edge_init_mean, config.edge_init_std),
            channels_last=config.channels_last,
            recompute=search_recompute_mode(config),
            checkpoint_layers=config.activation_checkpointing,
            genotype_stem_filters=fr,
            genotype_patch_size=list(config.patch_size),
            genotype_meta={"divisor": 2**config.num_depths, "sigma": config.sigma,
                           "search_stem_filters": config.stem_filters,
                           "channel_multiplier": config.retrain_channel_multiplier},
        )

    def search_schedule(self, config: DiNTSConfig) -> SearchSchedule:
        """The config's schedule fields, and eq. 11's ramp: every regulariser (entropies,
        lambda * topology, memory) is multiplied by ``t / t_all`` over the architecture steps."""
        names = {f.name for f in dataclasses.fields(SearchSchedule)}
        values = {k: v for k, v in dataclasses.asdict(config).items() if k in names}
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        return SearchSchedule(**values, regulariser_ramps={"*": "linear"})

    def search(self, data: SearchData, config: DiNTSConfig, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False) -> dict[str, Any]:
        """Seed, build the supernet and run the shared bi-level loop (``run_bilevel_search``)."""
        torch.manual_seed(config.seed)
        return super().search(data, config, reporter, checkpoint_dir, cancel=cancel, resume=resume)
