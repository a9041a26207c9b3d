"""The multi-resolution lattice search space of DiNTS (sec. 3.1, 3.3.2, 3.4) as small integer
tables, shared by every lattice method (DiNTS, DAST): it knows edges and patterns, not ops.

Levels ``d = 0..D-1`` are the resolutions of the lattice (``d`` = 1/2^(d+1) of the input with
the stride-2 stems). Each super node ``s_i`` gets ``E = 3D - 2`` candidate input edges from
``s_{i-1}``: to level ``d`` from ``d-1`` (down), ``d`` (same) and ``d+1`` (up).

Edge order (our choice, identical to MONAI's ``arch_code2in/out``): target-major and, per target,
down, same, up. For D = 4: ``(0->0) (1->0) (0->1) (1->1) (2->1) (1->2) (2->2) (3->2) (2->3) (3->3)``.
The edges into one target level are contiguous, which the supernet uses.

A connection pattern is a non-empty subset of the E edges, held as an integer ``m`` in
``1 .. 2^E - 1`` whose bit ``e`` says whether edge ``e`` is selected; pattern row ``j = m - 1``.
(MONAI numbers its patterns differently: its child ``j`` is ``j + 1`` written with edge 0 as
the most significant bit; :meth:`SearchSpace.monai_child_to_pattern` converts.)

A node activation pattern ``a`` is a non-empty subset of the D levels, an integer in
``1 .. 2^D - 1``, bit ``d`` = level ``d`` active. For a pattern ``j``, ``in_nodes[j]`` are the
levels it reads from and ``out_nodes[j]`` the levels it writes to.

Feasibility (sec. 3.3.3: no feature node with an input edge and no output edge, or the reverse):
pattern ``k`` may follow pattern ``j`` iff ``in_nodes[k] == out_nodes[j]``.
``F(j) = {k : in_nodes[k] == out_nodes[j]}``, ``F_in(a) = {j : out_nodes[j] == a}`` (patterns
that activate exactly ``a``), ``F_out(a) = {j : in_nodes[j] == a}`` (feasible output patterns
of a super node with activation ``a``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

__all__ = ["SearchSpace", "Edge", "get_space", "level_channels", "level_shape"]


@dataclass(frozen=True)
class Edge:
    """One candidate edge of a super node: ``source`` level -> ``target`` level."""

    index: int
    source: int
    target: int

    @property
    def resample(self) -> str:
        """``"down"``, ``"up"`` or ``"none"``."""
        return {1: "down", -1: "up", 0: "none"}[self.target - self.source]


class SearchSpace:
    """Edges, connection patterns and feasibility sets for ``num_depths`` resolution levels.

    Attributes:
        D: number of levels; E: edges per super node (3D - 2); M: connection patterns (2^E - 1);
        A: node activation patterns (2^D - 1).
        edges: the E :class:`Edge` objects in edge order.
        cp: ``uint8 [M, E]`` indicator vectors ``cp_j(e)``.
        in_nodes, out_nodes: ``int64 [M]`` node activation patterns read / written by pattern j.
    """

    def __init__(self, num_depths: int):
        if num_depths < 2:
            raise ValueError("a lattice needs at least 2 resolution levels")
        self.D = int(num_depths)
        edges = []
        for t in range(self.D):
            for s in (t - 1, t, t + 1):
                if 0 <= s < self.D:
                    edges.append(Edge(len(edges), s, t))
        self.edges: tuple[Edge, ...] = tuple(edges)
        self.E = len(edges)
        self.M = 2**self.E - 1
        self.A = 2**self.D - 1
        m = np.arange(1, self.M + 1, dtype=np.int64)
        self.cp = ((m[:, None] >> np.arange(self.E)) & 1).astype(np.uint8)
        src_bit = np.array([1 << e.source for e in edges], dtype=np.int64)
        tgt_bit = np.array([1 << e.target for e in edges], dtype=np.int64)
        self.in_nodes = np.bitwise_or.reduce(np.where(self.cp == 1, src_bit, 0), axis=1)
        self.out_nodes = np.bitwise_or.reduce(np.where(self.cp == 1, tgt_bit, 0), axis=1)

    # ---- edges --------------------------------------------------------------------------------
    def edges_into(self, level: int) -> range:
        """Indices of the (contiguous) edges that end at ``level``."""
        idx = [e.index for e in self.edges if e.target == level]
        return range(idx[0], idx[-1] + 1)

    # ---- feasibility sets ---------------------------------------------------------------------
    def feasible_next(self, j: int) -> np.ndarray:
        """``F(j)``: row indices k of patterns that may follow pattern row j."""
        return np.flatnonzero(self.in_nodes == self.out_nodes[j])

    def f_in(self, a: int) -> np.ndarray:
        """``F_in(a)``: pattern rows whose output node activation is exactly ``a``."""
        return np.flatnonzero(self.out_nodes == a)

    def f_out(self, a: int) -> np.ndarray:
        """``F_out(a)``: pattern rows that read exactly from the levels of ``a``."""
        return np.flatnonzero(self.in_nodes == a)

    @cached_property
    def f_in_matrix(self) -> np.ndarray:
        """``float32 [M, A]``: column ``a - 1`` is the indicator of ``F_in(a)``."""
        return (self.out_nodes[:, None] == np.arange(1, self.A + 1)[None, :]).astype(np.float32)

    @cached_property
    def f_out_matrix(self) -> np.ndarray:
        """``float32 [M, A]``: column ``a - 1`` is the indicator of ``F_out(a)``."""
        return (self.in_nodes[:, None] == np.arange(1, self.A + 1)[None, :]).astype(np.float32)

    @staticmethod
    def levels(a: int) -> list[int]:
        """The levels set in node activation pattern ``a``."""
        return [d for d in range(a.bit_length()) if (a >> d) & 1]

    def pattern_edges(self, j: int) -> list[int]:
        """Edge indices selected by pattern row ``j``."""
        return [e for e in range(self.E) if self.cp[j, e]]

    def pattern_row(self, edge_indicator) -> int:
        """Row index of the pattern with this 0/1 edge indicator (length E, not all zero)."""
        m = int(sum(int(b) << e for e, b in enumerate(edge_indicator)))
        if m == 0:
            raise ValueError("the empty pattern is not a connection pattern")
        return m - 1

    def monai_child_to_pattern(self, child: int) -> int:
        """MONAI ``child_list`` index -> our pattern row (MONAI: edge 0 is the top bit)."""
        bits = [((child + 1) >> (self.E - 1 - e)) & 1 for e in range(self.E)]
        return self.pattern_row(bits)


@lru_cache(maxsize=8)
def get_space(num_depths: int) -> SearchSpace:
    """Cached :class:`SearchSpace` for ``num_depths`` levels."""
    return SearchSpace(num_depths)


def level_channels(stem_filters: int, num_depths: int) -> list[int]:
    """Channels of lattice level ``d`` (at 1/2^(d+1) resolution): ``stem_filters * 2^(d+1)``."""
    return [stem_filters * 2 ** (d + 1) for d in range(num_depths)]


def level_shape(patch, level: int) -> tuple[int, ...]:
    """Spatial shape at absolute ``level`` (``1/2^level`` of ``patch``; lattice level d is d + 1)."""
    return tuple(int(s) // 2**level for s in patch)
