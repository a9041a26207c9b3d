"""The SCNAS search space (sec. 2.1 and 3 of the paper): 4 cell types, each a DAG of 4
intermediate nodes over its 2 inputs (14 edges, 8 candidate ops each: 448 logits), and the
macro U-Net that instantiates them.

Macro network (paper, Fig. 1 and sec. 3; ``depth`` = number of 2x downsamplings, paper 3)::

    stem -> (reduction, encoder-normal) x depth -> inter (a copy of encoder-normal)
         -> (expansion, decoder-normal) x depth -> out cell

Cell inputs (DARTS order): ``in0`` = the cell two back (previous-previous), ``in1`` = the
previous cell. The first reduction cell gets the stem output as both inputs. In the decoder
(expansion and decoder-normal cells) the previous cell's output is first summed with the
output of the encoder cell at the same level (the stem at level 0), paper footnote 4.

Channels (a choice: the paper only says that reduction / expansion cells double / halve the
channels): the output of a cell at level ``l`` has ``C_l = F * 2**l`` channels (``F`` = stem
channels: 48 in search, 68 in retraining); its 4 nodes have ``C_l / 4`` each and their concat is
the output. Each cell input is preprocessed to ``C_l / 4`` channels at the cell's input
resolution: a 1x1x1 conv (same level), a factorized reduce (one level finer) or a 1x1x1 conv
then trilinear x2 (expansion cells, "pre-upsampling").

Reduction cells: stride 2 on the edges that leave the two inputs (DARTS' convention; the paper
says "all operations ... are of stride two", which cannot hold for edges between nodes that
are already at the reduced resolution).
"""

from __future__ import annotations

import dataclasses
from functools import cache

from .ops import PRIMITIVES

__all__ = [
    "CELL_TYPES", "NUM_NODES", "NUM_INPUTS", "Edge", "CELL_EDGES", "NUM_EDGES", "NUM_OPS",
    "NUM_ARCH_LOGITS", "CellInstance", "macro_plan", "level_channels", "node_channels",
]

#: The 4 searched cell types (index = first axis of alpha).
CELL_TYPES: tuple[str, ...] = ("encoder_normal", "reduction", "decoder_normal", "expansion")
NUM_NODES = 4
NUM_INPUTS = 2
NUM_OPS = len(PRIMITIVES)


@dataclasses.dataclass(frozen=True)
class Edge:
    """Edge ``index`` of a cell DAG from ``source`` to intermediate node ``target`` (0-based).

    ``source`` < 2 is a cell input (``in0``, ``in1``), ``source - 2`` an intermediate node.
    """

    index: int
    source: int
    target: int

    @property
    def from_input(self) -> bool:
        return self.source < NUM_INPUTS

    @property
    def source_id(self) -> str:
        return f"in{self.source}" if self.from_input else f"n{self.source - NUM_INPUTS}"

    @property
    def target_id(self) -> str:
        return f"n{self.target}"


def _cell_edges() -> tuple[Edge, ...]:
    edges = []
    for j in range(NUM_NODES):
        for i in range(NUM_INPUTS + j):
            edges.append(Edge(len(edges), i, j))
    return tuple(edges)


#: The 14 edges of every cell type: node j has 2 + j incoming edges (DARTS indexing).
CELL_EDGES: tuple[Edge, ...] = _cell_edges()
NUM_EDGES = len(CELL_EDGES)
NUM_ARCH_LOGITS = len(CELL_TYPES) * NUM_EDGES * NUM_OPS


def level_channels(stem_channels: int, level: int) -> int:
    """Output channels ``C_l = F * 2**l`` of a cell at level ``l``."""
    return int(stem_channels) * 2 ** int(level)


def node_channels(stem_channels: int, level: int) -> int:
    """Channels of each of the 4 intermediate nodes of a cell at level ``l`` (``C_l / 4``)."""
    c = level_channels(stem_channels, level)
    if c % NUM_NODES:
        raise ValueError(f"stem channels {stem_channels} must be divisible by {NUM_NODES}")
    return c // NUM_NODES


@dataclasses.dataclass(frozen=True)
class CellInstance:
    """One cell of the macro network.

    Attributes:
        name: unique id (``red1``, ``enc1``, ..., ``inter``, ``exp1``, ``dec1``, ...).
        cell_type: one of :data:`CELL_TYPES` (the inter-cell is ``encoder_normal``).
        level: resolution level of the cell's output (0 = full resolution).
        input_level: level of the cell's inputs after preprocessing (= ``level`` except for
            reduction cells, whose inputs are one level finer).
        prev_prev / prev: names of the feature maps feeding ``in0`` / ``in1`` (``stem`` or a
            cell name).
        skip: decoder only: the encoder feature map summed with ``prev`` before use.
    """

    name: str
    cell_type: str
    level: int
    input_level: int
    prev_prev: str
    prev: str
    skip: str | None = None


@cache
def macro_plan(depth: int) -> tuple[CellInstance, ...]:
    """The cells of the macro U-Net with ``depth`` downsamplings, in execution order.

    ``depth`` 3 (the paper) gives 6 encoder cells, the inter-cell and 6 decoder cells: the
    paper's 12 searched cells plus the inter-cell copy.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    cells: list[CellInstance] = []
    level_of = {"stem": 0}
    encoder_at = {0: "stem"}  # same-level encoder output for the decoder sums
    prev_prev, prev = "stem", "stem"
    for d in range(1, depth + 1):
        for kind, name in (("reduction", f"red{d}"), ("encoder_normal", f"enc{d}")):
            in_level = d - 1 if kind == "reduction" else d
            cells.append(CellInstance(name, kind, d, in_level, prev_prev, prev))
            level_of[name] = d
            prev_prev, prev = prev, name
        encoder_at[d] = f"enc{d}"
    cells.append(CellInstance("inter", "encoder_normal", depth, depth, prev_prev, prev))
    level_of["inter"] = depth
    prev_prev, prev = prev, "inter"
    for k in range(1, depth + 1):
        up_level = depth - k
        for kind, name, level in (("expansion", f"exp{k}", up_level), ("decoder_normal", f"dec{k}", up_level)):
            prev_level = level_of[prev]
            cells.append(CellInstance(name, kind, level, level, prev_prev, prev, skip=encoder_at[prev_level]))
            level_of[name] = level
            prev_prev, prev = prev, name
    return tuple(cells)


def feature_levels(depth: int) -> dict[str, int]:
    """Level of every feature map of the macro network (``stem`` and each cell)."""
    out = {"stem": 0}
    out.update({c.name: c.level for c in macro_plan(depth)})
    return out


def preprocess_kind(source_level: int, cell: CellInstance) -> str:
    """How a cell input at ``source_level`` is brought to the cell's input resolution:
    ``"same"`` (1x1x1 conv), ``"down"`` (factorized reduce) or ``"up"`` (pre-upsampling)."""
    delta = cell.input_level - source_level
    if delta == 0:
        return "same"
    if delta == 1:
        return "down"
    if delta == -1:
        return "up"
    raise ValueError(f"{cell.name}: an input at level {source_level} is {delta:+d} levels away")
