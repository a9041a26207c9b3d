"""The C2FNAS plug-in (``registry["c2fnas"]``): config and presets, memory estimate, the search
(coarse stage through a candidate executor, the local one by default; fine stage), retraining
presets (the paper's deployment schedule) and the network builder of its genotypes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from ...training.retrain import RETRAIN_PRESETS
from ..base import DataSettings, MemoryEstimate, SearchData, SearchMethod
from .config import PRESETS, C2FNASConfig
from .memory import estimate_memory, heaviest_genotype

__all__ = ["C2FNASMethod", "PAPER", "C2FNAS_RETRAIN_PRESETS"]

PAPER = ("Q. Yu, D. Yang, H. Roth, Y. Bai, Y. Zhang, A. L. Yuille, D. Xu. C2FNAS: Coarse-to-Fine "
         "Neural Architecture Search for 3D Medical Image Segmentation. CVPR 2020.")

#: Deployment (sec. 4.1): the candidates' settings for 40,000 steps, decays at 16k and 32k.
C2FNAS_RETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"warmup_steps": 1000, "steps": 40000, "lr_start": 0.0025, "lr_peak": 0.02,
              "lr_milestones": [16000, 32000], "lr_gamma": 0.5, "momentum": 0.9,
              "weight_decay": 4e-5, "batch_size": 8, "patch_size": [96, 96, 96]},
    "small": dict(RETRAIN_PRESETS["small"]),
    "tiny": dict(RETRAIN_PRESETS["tiny"]),
}


class C2FNASMethod(SearchMethod):
    """Coarse topology evolution over candidates trained from scratch, then a one-shot search
    of the cell ops on the best topology (C2FNAS)."""

    name = "c2fnas"
    paper = PAPER
    description = ("Coarse stage: Algorithm 1 evolves U-shaped topologies (924 codes, k-means into "
                   "8 clusters, 0.2 exploration), each candidate trained from scratch on any free "
                   "worker; fine stage: a single-path supernet over 3D / P3D / 2D cell ops, then "
                   "random search of K colourings scored with its weights.")
    config_class = C2FNASConfig
    presets = PRESETS
    default_preset = "paper"
    retrain_presets = C2FNAS_RETRAIN_PRESETS

    def estimate_memory(self, config: C2FNASConfig, in_channels: int, out_channels: int) -> MemoryEstimate:
        return estimate_memory(config, in_channels, out_channels)

    def data_settings(self, config: C2FNASConfig) -> DataSettings:
        settings = super().data_settings(config)
        return dataclasses.replace(settings, divisor=config.divisor,
                                   patch_size=tuple(config.patch_size))

    def build_supernet(self, config: C2FNASConfig, in_channels: int, out_channels: int) -> nn.Module:
        """The largest network the search trains: the heaviest topology with P3D in every
        cell (the memory contract measures it; see ``memory``)."""
        from nasengine.genotype import build_network

        return build_network(heaviest_genotype(config, in_channels, out_channels))

    def search(self, data: SearchData, config: C2FNASConfig, reporter, checkpoint_dir: str | Path,
               cancel=None, resume: bool = False, executor=None) -> dict[str, Any]:
        """Coarse and fine stages; ``executor`` (a ``CandidateExecutor``, or a callable taking
        the ``CandidateTrainer``) runs the coarse candidates, default the local one."""
        from .search import run_search

        return run_search(data, config, reporter, checkpoint_dir, cancel=cancel, resume=resume,
                          device=data.device, executor=executor)

    def random_genotype(self, config: C2FNASConfig, rng, in_channels: int, out_channels: int
                        ) -> dict[str, Any]:
        """The "random" control (issue 12): a topology code drawn uniformly from the coarse space
        (Algorithm 1's candidates) and one fine-stage op per cell (3D / P3D / 2D), uniformly.
        C2FNAS's supernet has no architecture weights, so the default draw cannot apply."""
        from .genotypes import topology_genotype
        from .ops import CELL_OP_NAMES
        from .space import enumerate_codes

        codes = enumerate_codes(config.num_cells, config.depth)
        code = codes[int(rng.integers(len(codes)))]
        ops = [CELL_OP_NAMES[int(rng.integers(len(CELL_OP_NAMES)))] for _ in code]
        return topology_genotype(code, ops, in_channels=in_channels, out_channels=out_channels,
                                 base_channels=config.base_channels)

    def patch_divisor(self, genotype: dict[str, Any]) -> int:
        code = (genotype.get("meta") or {}).get("topology_code")
        if code:
            return 2 ** (max(int(c) for c in code) + 1)
        return super().patch_divisor(genotype)
