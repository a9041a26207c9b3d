"""The SCNAS supernet: the macro U-Net of :mod:`.space` whose cells mix ops by Algorithm 1.

Every forward in training mode draws one architecture: for each of the 4 x 14 cell-type edges a
pair of ops and their renormalised weights (:func:`.sampling.sample_pairs`); every cell of a
type uses that type's draw (cells of one type share one structure, sec. 2.1). On each edge
only the two drawn op modules run; the output is ``z_hat_o1 * o1(x) + z_hat_o2 * o2(x)`` (a
drawn ``zero`` runs but adds nothing). In eval mode (validation during the search) each edge
runs only its argmax op with weight 1 (zero: nothing).

The temperature ``tau`` is a buffer (saved in ``state_dict`` and so in every checkpoint), set
by :meth:`SCNASSupernet.on_step` before each step; ``sample_counts [4, 8]`` counts how often
each op was drawn per cell type since the last step report (a buffer too, so a resumed run
reports the same numbers).

Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, each size of S divisible by
``2 ** depth``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .genotypes import continuous_genotype, discrete_genotype
from .ops import PRIMITIVES, ZERO, OutCell, Preprocess, PreprocessDown, PreprocessUp, Stem, build_candidate
from .sampling import sample_pairs, temperature_at
from .space import (
    CELL_EDGES,
    CELL_TYPES,
    NUM_EDGES,
    NUM_NODES,
    NUM_OPS,
    CellInstance,
    feature_levels,
    macro_plan,
    node_channels,
    preprocess_kind,
)

__all__ = ["SearchCell", "SCNASSupernet"]

_PRE = {"same": Preprocess, "down": PreprocessDown, "up": PreprocessUp}


class SearchCell(nn.Module):
    """One cell instance of the supernet: input preprocessing and 14 edges x 8 candidate ops.

    Args:
        cell: its place in the macro network.
        c_prev_prev, c_prev: channels of the two inputs; c: node channels ``C``.
        level_prev_prev, level_prev: levels of the two inputs.

    Forward: ``(s0, s1, ops, weights)`` with ``ops`` a list of 14 pairs of op indices (or of
    1-tuples in eval mode) and ``weights [14, k]``; returns ``[B, 4C, *S_cell]``.
    """

    def __init__(self, cell: CellInstance, c_prev_prev: int, c_prev: int, c: int,
                 level_prev_prev: int, level_prev: int):
        super().__init__()
        self.cell = cell
        self.pre0 = _PRE[preprocess_kind(level_prev_prev, cell)](c_prev_prev, c)
        self.pre1 = _PRE[preprocess_kind(level_prev, cell)](c_prev, c)
        reduction = cell.cell_type == "reduction"
        self.edges = nn.ModuleList(
            nn.ModuleList(build_candidate(p, c, c, 2 if reduction and e.from_input else 1) for p in PRIMITIVES)
            for e in CELL_EDGES
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, ops: list[tuple[int, ...]],
                weights: torch.Tensor | None) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for j in range(NUM_NODES):
            total = None
            for e in CELL_EDGES:
                if e.target != j:
                    continue
                x = states[e.source]
                for k, o in enumerate(ops[e.index]):
                    y = self.edges[e.index][o](x)  # only the drawn ops run
                    if o == ZERO:
                        continue  # zero adds nothing (and saves nothing for backward)
                    if weights is not None:
                        y = weights[e.index, k] * y
                    total = y if total is None else total + y
            if total is None:  # eval mode, every incoming argmax is zero: the node is 0
                total = self._zeros_like_node(states[0])
            states.append(total)
        return torch.cat(states[2:], dim=1)

    def _zeros_like_node(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros of a node's shape from the preprocessed input ``x`` [B, C, *S]."""
        if self.cell.cell_type == "reduction":
            return x.new_zeros(x.shape[0], x.shape[1], *(s // 2 for s in x.shape[2:]))
        return torch.zeros_like(x)


class SCNASSupernet(nn.Module):
    """The searchable network (the ``SearchableNetwork`` of the training contract).

    Args:
        in_channels: image channels; out_channels: classes (logits).
        stem_channels: ``F`` (paper: 48 in search).
        depth: number of 2x downsamplings (paper: 3).
        tau_max, tau_min, tau_schedule: the temperature schedule (:func:`.sampling.temperature_at`).
        anneal_start: 0-based step of the first architecture step (before it tau stays tau_max).
        anneal_steps: architecture steps over which tau goes from tau_max to tau_min.
        alpha_init_std: alpha ~ N(0, std) (DARTS: 1e-3).
        genotype_stem_channels: the width written into the derived genotype (paper: 68).
        genotype_meta / genotype_patch_size: extra meta and the patch the figures are at.
        mixing: ``"pair"`` (Algorithm 1) or ``"all"`` (every op mixed by softmax(alpha), as
            DARTS; only for ``bench/scnas_sampling.py``).
    """

    def __init__(self, in_channels: int, out_channels: int, stem_channels: int = 48, depth: int = 3, *,
                 tau_max: float = 10.0, tau_min: float = 0.1, tau_schedule: str = "linear",
                 anneal_start: int = 0, anneal_steps: int = 1, alpha_init_std: float = 1e-3,
                 genotype_stem_channels: int | None = None, genotype_meta: dict | None = None,
                 genotype_patch_size: list[int] | None = None, mixing: str = "pair"):
        super().__init__()
        if mixing not in ("pair", "all"):
            raise ValueError(f"mixing must be 'pair' (Algorithm 1) or 'all' (DARTS), got {mixing!r}")
        self.mixing = mixing
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.stem_channels, self.depth = int(stem_channels), int(depth)
        self.tau_max, self.tau_min, self.tau_schedule = float(tau_max), float(tau_min), tau_schedule
        self.anneal_start, self.anneal_steps = int(anneal_start), int(anneal_steps)
        self.genotype_stem_channels = int(genotype_stem_channels or stem_channels)
        self.genotype_meta = dict(genotype_meta or {})
        self.genotype_patch_size = list(genotype_patch_size) if genotype_patch_size else None
        self.plan = macro_plan(self.depth)
        levels = feature_levels(self.depth)
        width = {"stem": self.stem_channels}
        self.stem = Stem(self.in_channels, self.stem_channels)
        cells = {}
        for cell in self.plan:
            c = node_channels(self.stem_channels, cell.level)
            cells[cell.name] = SearchCell(cell, width[cell.prev_prev], width[cell.prev], c,
                                          levels[cell.prev_prev], levels[cell.prev])
            width[cell.name] = NUM_NODES * c
        self.cells = nn.ModuleDict(cells)
        self.out = OutCell(width[self.plan[-1].name], self.out_channels)
        self.alpha = nn.Parameter(torch.randn(len(CELL_TYPES), NUM_EDGES, NUM_OPS) * float(alpha_init_std))
        self.register_buffer("tau", torch.tensor(self.tau_max, dtype=torch.float64))
        self.register_buffer("sample_counts", torch.zeros(len(CELL_TYPES), NUM_OPS, dtype=torch.int64))
        self.last_sample: list[list[tuple[int, ...]]] | None = None

    # ---- parameters --------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """``[alpha]``: ``[4 cell types, 14 edges, 8 ops]`` = 448 logits."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def arch_regularisers(self) -> dict[str, torch.Tensor]:
        """SCNAS has no architecture regulariser (the loss is the segmentation loss alone)."""
        return {}

    # ---- sampling ----------------------------------------------------------------------------
    def draw(self) -> tuple[list[list[tuple[int, ...]]], torch.Tensor | None]:
        """Ops per (type, edge) and their weights ``[4, 14, k]``: Algorithm 1 in training mode,
        the argmax (weight 1, no tensor) in eval mode."""
        if not self.training:
            arg = self.alpha.detach().argmax(-1).cpu().tolist()
            return [[(o,) for o in row] for row in arg], None
        if self.mixing == "all":  # DARTS: every op, weighted by softmax(alpha) (the benchmark's baseline)
            every = [[tuple(range(NUM_OPS))] * NUM_EDGES for _ in CELL_TYPES]
            return every, torch.softmax(self.alpha, dim=-1)
        sample = sample_pairs(self.alpha.reshape(-1, NUM_OPS), float(self.tau))
        ops = sample.ops.view(len(CELL_TYPES), NUM_EDGES, 2)
        with torch.no_grad():
            counts = torch.zeros(len(CELL_TYPES), NUM_OPS, dtype=torch.int64)
            counts.scatter_add_(1, ops.reshape(len(CELL_TYPES), -1), torch.ones(len(CELL_TYPES), 2 * NUM_EDGES, dtype=torch.int64))
            self.sample_counts += counts.to(self.sample_counts.device)
        pairs = [[tuple(p) for p in row] for row in ops.tolist()]
        self.last_sample = pairs
        return pairs, sample.weights.view(len(CELL_TYPES), NUM_EDGES, 2)

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops, weights = self.draw()
        type_index = {t: i for i, t in enumerate(CELL_TYPES)}
        feats = {"stem": self.stem(x)}
        for cell in self.plan:
            t = type_index[cell.cell_type]
            prev = feats[cell.prev] if cell.skip is None else feats[cell.prev] + feats[cell.skip]
            feats[cell.name] = self.cells[cell.name](feats[cell.prev_prev], prev, ops[t],
                                                     None if weights is None else weights[t])
        return self.out(feats[self.plan[-1].name])

    # ---- schedule hook -----------------------------------------------------------------------
    def temperature_for(self, step_index: int) -> float:
        """Temperature of 0-based step ``step_index``: tau_max before the architecture steps,
        then annealed over ``anneal_steps``."""
        if step_index < self.anneal_start:
            return self.tau_max
        return temperature_at(step_index - self.anneal_start, self.anneal_steps, self.tau_max,
                              self.tau_min, self.tau_schedule)

    def on_step(self, step: int, phase: str) -> dict[str, Any]:
        """The shared loop calls this before each step (``step``: 0-based index of the step
        about to run). Sets the temperature of that step and returns the step's metrics: the
        temperature, and the ops drawn per cell type in the previous step (both of its
        forwards), whose counts are then reset."""
        self.tau.fill_(self.temperature_for(step))
        metrics = {
            "temperature": float(self.tau),
            "sampled_ops": {t: {p: int(n) for p, n in zip(PRIMITIVES, row)}
                            for t, row in zip(CELL_TYPES, self.sample_counts.tolist())},
        }
        self.sample_counts.zero_()
        return metrics

    # ---- discrete views ----------------------------------------------------------------------
    def alpha_array(self) -> np.ndarray:
        return self.alpha.detach().double().cpu().numpy()

    def _meta(self) -> dict[str, Any]:
        return {**self.genotype_meta, "temperature": float(self.tau),
                "search_stem_channels": self.stem_channels}

    def decode(self) -> dict[str, Any]:
        """The derived architecture (:mod:`.derive`) at the retraining width, with figures."""
        doc = discrete_genotype(self.alpha_array(), in_channels=self.in_channels, out_channels=self.out_channels,
                                stem_channels=self.genotype_stem_channels, depth=self.depth, meta=self._meta())
        if self.genotype_patch_size:
            from ...genotype import derive_figures

            doc["derived"] = derive_figures(doc, self.genotype_patch_size)
        return doc

    def snapshot(self) -> dict[str, Any]:
        """softmax(alpha) on every edge of the 4 cell types, with the current derivation."""
        return continuous_genotype(self.alpha_array(), in_channels=self.in_channels,
                                   out_channels=self.out_channels, stem_channels=self.stem_channels,
                                   depth=self.depth, meta=self._meta())
