"""The fine stage's single-path one-shot supernet (sec. 3.4, SPOS with uniform sampling).

On the best topology, every cell holds its three candidate ops (separate weights, SPOS style);
one op per cell is active. In training mode every forward draws a uniformly random path from
torch's global RNG (so a checkpoint's RNG state resumes the same draws); ``set_path`` fixes one
for scoring a candidate with the shared weights. InstanceNorm needs no BatchNorm
recalibration before scoring.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasengine.genotype import GenotypeNetwork
from nasengine.ops import OPS

from .genotypes import topology_genotype
from .ops import CELL_OP_NAMES

__all__ = ["ChoiceOp", "SinglePathSupernet"]


class ChoiceOp(nn.Module):
    """The three cell ops of one cell; ``active`` picks the one that runs.
    Shapes: ``[B, C, *S] -> [B, C, *S]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.candidates = nn.ModuleList(OPS[name].build(channels, channels)
                                        for name in CELL_OP_NAMES)
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.candidates[self.active](x)


class SinglePathSupernet(nn.Module):
    """The supernet of topology ``code``: ``[B, in, *S] -> [B, out, *S]``.

    Built as the topology's genotype network with each cell's node op replaced by a
    ``ChoiceOp`` (``GenotypeNetwork.node_ops`` holds the cells' ops in cell order).
    """

    def __init__(self, code: Sequence[int], *, in_channels: int, out_channels: int,
                 base_channels: int):
        super().__init__()
        self.code = tuple(int(c) for c in code)
        doc = topology_genotype(self.code, in_channels=in_channels, out_channels=out_channels,
                                base_channels=base_channels)
        self.network = GenotypeNetwork(doc)
        cells = [n for n in doc["nodes"] if n.get("op")]
        self.network.node_ops = nn.ModuleList(ChoiceOp(n["channels"]) for n in cells)
        self.sample_paths = True

    @property
    def num_cells(self) -> int:
        return len(self.code)

    def set_path(self, ops: Sequence[str]) -> None:
        """Fix the op of every cell (names from ``CELL_OP_NAMES``)."""
        if len(ops) != self.num_cells:
            raise ValueError(f"{len(ops)} ops for {self.num_cells} cells")
        for choice, name in zip(self.network.node_ops, ops):
            choice.active = CELL_OP_NAMES.index(name)

    def path(self) -> list[str]:
        return [CELL_OP_NAMES[c.active] for c in self.network.node_ops]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.sample_paths:
            draw = torch.randint(len(CELL_OP_NAMES), (self.num_cells,))
            self.set_path([CELL_OP_NAMES[int(i)] for i in draw])
        return self.network(x)
