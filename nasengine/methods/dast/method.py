"""The DAST plug-in (``registry["dast"]``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ...lattice.space import get_space
from ...training.search_loop import SearchSchedule
from ..base import DataSettings, MemoryEstimate, SearchData, SearchMethod
from .config import PRESETS, RETRAIN_PRESETS, DASTConfig
from .memory import estimate_memory, op_cost_table, retrain_filters
from .ops import TRANSFORMER
from .supernet import DASTSupernet

__all__ = ["DASTMethod"]

PAPER = ("D. Yang, Z. Xu, Y. He, V. Nath, W. Li, A. Myronenko, A. Hatamizadeh, C. Zhao, "
         "H. R. Roth, D. Xu. DAST: Differentiable Architecture Search with Transformer for 3D "
         "Medical Image Segmentation.")


class DASTMethod(SearchMethod):
    """DiNTS's lattice search with skip / conv / transformer ops under a memory budget."""

    name = "dast"
    paper = PAPER
    description = ("Searches where transformers beat convolutions on DiNTS's multi-path "
                   "lattice (ops: skip, 3x3x3 conv, transformer) under a memory budget; the "
                   "transformers' segmentation attention can be shown over the image.")
    config_class = DASTConfig
    presets = PRESETS
    default_preset = "paper"
    retrain_presets = RETRAIN_PRESETS

    def estimate_memory(self, config: DASTConfig, in_channels: int, out_channels: int) -> MemoryEstimate:
        return estimate_memory(config, in_channels, out_channels)

    def data_settings(self, config: DASTConfig) -> DataSettings:
        settings = super().data_settings(config)
        return dataclasses.replace(settings, divisor=2**config.num_depths)

    def build_supernet(self, config: DASTConfig, in_channels: int, out_channels: int) -> DASTSupernet:
        """The supernet of ``config``. The memory term (eq. 10) costs each op at the retrained
        network's channels and patch, at every level's own shape (the budget is for the
        network that will be retrained)."""
        space = get_space(config.num_depths)
        params = config.transformer_params()
        fr = retrain_filters(config.stem_filters, config.retrain_channel_multiplier)
        op_costs, edge_costs = op_cost_table(space, fr, config.retrain_patch_size, {TRANSFORMER: params})
        return DASTSupernet(
            in_channels, out_channels, config.num_layers, config.num_depths, config.stem_filters,
            transformer_params=params, op_costs=op_costs, edge_costs=edge_costs,
            sigma=config.sigma, topology_weight=config.topology_weight,
            alpha_init=(config.alpha_init_mean, config.alpha_init_std),
            edge_init=(config.edge_init_mean, config.edge_init_std),
            genotype_stem_filters=fr, genotype_patch_size=list(config.patch_size),
            genotype_meta={"divisor": 2**config.num_depths, "sigma": config.sigma,
                           "search_stem_filters": config.stem_filters,
                           "channel_multiplier": config.retrain_channel_multiplier},
        )

    def search_schedule(self, config: DASTConfig) -> SearchSchedule:
        """DiNTS's schedule and eq. 11 ramp (DAST searches "following" DiNTS): every
        regulariser (entropies, topology, memory) times ``t / t_all``."""
        names = {f.name for f in dataclasses.fields(SearchSchedule)}
        values = {k: v for k, v in dataclasses.asdict(config).items() if k in names}
        values["lr_milestones"] = tuple(values["lr_milestones"])
        return SearchSchedule(**values, regulariser_ramps={"*": "linear"})

    # -- attention maps (a duck-typed hook the prediction job looks for) ---------------------
    def attention_sites(self, genotype: dict[str, Any]) -> list[dict[str, Any]]:
        """The transformer edges of ``genotype`` (``id``, ``source``, ``target``, ``layer``,
        ``level``): the ops whose attention maps a prediction can store."""
        from .attention import transformer_sites

        return [site.to_dict() for site in transformer_sites(genotype)]

    def write_attention_maps(self, bundle, input_path, out_dir, *, which=None, device=None,
                             sw_batch_size: int = 4) -> list[dict[str, Any]]:
        """:func:`.attention.write_attention_maps`: one float32 NIfTI per chosen transformer op
        in ``out_dir``, in the input's geometry; nothing for a model without transformer ops."""
        from .attention import write_attention_maps

        return write_attention_maps(bundle, input_path, out_dir, which=which, device=device,
                                    sw_batch_size=sw_batch_size)

    def search(self, data: SearchData, config: DASTConfig, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False) -> dict[str, Any]:
        """Seed, build the supernet and run the shared bi-level loop."""
        torch.manual_seed(config.seed)
        return super().search(data, config, reporter, checkpoint_dir, cancel=cancel, resume=resume)
