"""Derivation of the discrete cells from alpha (paper Fig. 1c, "induced final architecture").

Per edge: the op with the largest logit (ties: the first in :data:`~.ops.PRIMITIVES` order);
``zero`` means no edge. Then, in node order:

- an edge whose source node is dead is dropped (a dead node has no value to pass on);
- a node left with no incoming edge is dead: it is dropped from the cell and from the
  output concat (the cell's output then has ``live nodes x C`` channels, and the next cells'
  preprocessing convs take that many);
- a cell whose 4 nodes are all dead would output nothing; it falls back to, for each node in
  order, its single best non-zero (edge, op) by softmax(alpha) (the choice in
  ../shared/METHOD-NOTES.md sec. 2.4; the paper does not say), and is flagged ``fallback``.

A cell input that no kept edge reads is marked unused (its preprocessing is not built).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .ops import PRIMITIVES, ZERO
from .space import CELL_EDGES, NUM_EDGES, NUM_INPUTS, NUM_NODES, NUM_OPS

__all__ = ["CellDecision", "derive_cell", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class CellDecision:
    """The discrete structure of one cell type.

    Attributes:
        ops: ``[14]`` op index kept on each edge (``ZERO`` = no edge, also for dropped edges).
        argmax: ``[14]`` the raw per-edge argmax (before dead-node pruning and fallback).
        live: ``[4]`` whether each intermediate node is kept.
        used_inputs: ``[2]`` whether ``in0`` / ``in1`` feed a kept edge.
        fallback: the all-dead fallback was applied.
    """

    ops: tuple[int, ...]
    argmax: tuple[int, ...]
    live: tuple[bool, ...]
    used_inputs: tuple[bool, ...]
    fallback: bool

    @property
    def kept_edges(self) -> list[int]:
        return [e for e in range(NUM_EDGES) if self.ops[e] != ZERO]

    @property
    def num_live(self) -> int:
        return sum(self.live)

    def op_names(self) -> list[str]:
        return [PRIMITIVES[o] for o in self.ops]


def _prune(choice: list[int]) -> tuple[list[int], list[bool]]:
    ops = list(choice)
    live_src = [True] * NUM_INPUTS + [False] * NUM_NODES
    for j in range(NUM_NODES):
        any_in = False
        for e in CELL_EDGES:
            if e.target != j:
                continue
            if ops[e.index] != ZERO and not live_src[e.source]:
                ops[e.index] = ZERO  # from a dead node
            any_in = any_in or ops[e.index] != ZERO
        live_src[NUM_INPUTS + j] = any_in
    return ops, live_src[NUM_INPUTS:]


def derive_cell(alpha: np.ndarray) -> CellDecision:
    """The discrete cell of ``alpha [14, 8]`` (one cell type's logits)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (NUM_EDGES, NUM_OPS):
        raise ValueError(f"alpha of one cell type must be [{NUM_EDGES}, {NUM_OPS}], got {alpha.shape}")
    argmax = [int(i) for i in alpha.argmax(axis=1)]
    ops, live = _prune(argmax)
    fallback = not any(live)
    if fallback:
        prob = softmax(alpha)
        prob[:, ZERO] = -1.0  # never pick zero
        ops = [ZERO] * NUM_EDGES
        for j in range(NUM_NODES):
            into = [e for e in CELL_EDGES if e.target == j]  # every source is live by now
            best = max(into, key=lambda e: (prob[e.index].max(), -e.index))
            ops[best.index] = int(prob[best.index].argmax())
        live = [True] * NUM_NODES
    used = [any(ops[e.index] != ZERO for e in CELL_EDGES if e.source == i) for i in range(NUM_INPUTS)]
    return CellDecision(tuple(ops), tuple(argmax), tuple(live), tuple(used), fallback)
