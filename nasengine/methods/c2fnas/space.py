"""The C2FNAS search spaces (sec. 3.3, 3.4, 4.1).

Coarse space S': a network of ``num_cells`` cells, ``depth`` of them down-sampling and
``depth`` up-sampling, under the U-shape prior (every down before every up). A topology is its
*code*: the level of each cell, starting from the stem's level 0, +1 after a down-sampling
cell, -1 after an up-sampling one. Choosing which ``2 * depth`` cells resample fixes the code
(the order D..DU..U is forced), so ``|S'| = C(num_cells, 2 * depth)``: C(12, 6) = 924.

Fine space C: one op per cell out of 3 (3D, P3D, 2D): ``3 ** num_cells`` = 531,441.

Cell inputs (sec. 4.1): always the previous cell (or the stem). A second input when (1) the
cell two back (the stem counts as cell -1) is at the same level: ``previous_previous``; or
(2) the cell is the first after an up-sampling, i.e. an up cell: the last cell before the
matching down-sampling (matched last-in-first-out): ``skip``. When both apply they name the
same cell (a down immediately followed by an up), which is then one ``skip`` input.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

from .ops import CELL_OP_NAMES

__all__ = ["PAPER_NUM_CELLS", "PAPER_DEPTH", "FIG5_CODE", "enumerate_codes", "coarse_space_size",
           "fine_space_size", "CellInputs", "cell_inputs", "check_code", "merge_cells", "STEM"]

PAPER_NUM_CELLS = 12
PAPER_DEPTH = 3
#: The topology of the final C2FNAS-Panc network (Fig. 5, as both public re-implementations
#: read it).
FIG5_CODE: tuple[int, ...] = (0, 0, 1, 1, 2, 3, 2, 2, 1, 0, 0, 0)
#: Index standing for the stem output among a cell's inputs.
STEM = -1


def enumerate_codes(num_cells: int = PAPER_NUM_CELLS, depth: int = PAPER_DEPTH
                    ) -> list[tuple[int, ...]]:
    """Every topology code of the coarse space, in lexicographic order of the resampling
    positions (stable: cluster ids and samples depend on it)."""
    codes = []
    for positions in itertools.combinations(range(num_cells), 2 * depth):
        downs = set(positions[:depth])
        level, code = 0, []
        for i in range(num_cells):
            if i in downs:
                level += 1
            elif i in positions:
                level -= 1
            code.append(level)
        codes.append(tuple(code))
    return codes


def coarse_space_size(num_cells: int = PAPER_NUM_CELLS, depth: int = PAPER_DEPTH) -> int:
    return math.comb(num_cells, 2 * depth)


def fine_space_size(num_cells: int = PAPER_NUM_CELLS) -> int:
    return len(CELL_OP_NAMES) ** num_cells


def check_code(code: Sequence[int], depth: int | None = None) -> tuple[int, ...]:
    """``code`` as a tuple if it is a U-shaped path (steps of -1/0/+1 from level 0, every
    down before every up, back at level 0, peak ``depth`` when given); else ``ValueError``."""
    code = tuple(int(v) for v in code)
    steps = [b - a for a, b in zip((0,) + code[:-1], code)]
    if not code or any(s not in (-1, 0, 1) for s in steps):
        raise ValueError(f"topology code {list(code)}: levels must change by -1, 0 or +1 per cell")
    seen_up = False
    for s in steps:
        if s < 0:
            seen_up = True
        elif s > 0 and seen_up:
            raise ValueError(f"topology code {list(code)}: a down-sampling after an up-sampling "
                             "(the U-shape prior puts every down first)")
    if code[-1] != 0:
        raise ValueError(f"topology code {list(code)}: must end at level 0")
    if depth is not None and max(code) != depth:
        raise ValueError(f"topology code {list(code)}: peak level {max(code)}, expected {depth}")
    return code


@dataclasses.dataclass(frozen=True)
class CellInputs:
    """The inputs of one cell: ``previous`` (cell index, ``STEM`` for the stem), ``kind``
    (``"down"``, ``"up"`` or ``"same"``: how the previous input is resampled) and the optional
    second input ``second`` with its ``role`` (``previous_previous`` or ``skip``)."""

    previous: int
    kind: str
    second: int | None = None
    role: str | None = None


def cell_inputs(code: Sequence[int]) -> list[CellInputs]:
    """The inputs of every cell of a topology (sec. 4.1 rules, see the module docstring)."""
    code = check_code(code)
    levels = {STEM: 0, **{i: c for i, c in enumerate(code)}}
    pending_skips: list[int] = []  # the cell before each unmatched down-sampling (LIFO)
    out = []
    for i, level in enumerate(code):
        prev = i - 1 if i > 0 else STEM
        kind = "same" if level == levels[prev] else ("down" if level > levels[prev] else "up")
        second, role = None, None
        if kind == "down":
            pending_skips.append(prev)
        elif kind == "up":
            second, role = pending_skips.pop(), "skip"
        if second is None and i >= 1:
            two_back = i - 2 if i >= 2 else STEM
            if levels[two_back] == level:
                second, role = two_back, "previous_previous"
        out.append(CellInputs(previous=prev, kind=kind, second=second, role=role))
    return out


def merge_cells(code: Sequence[int]) -> list[int]:
    """Indices of the cells that take two inputs."""
    return [i for i, c in enumerate(cell_inputs(code)) if c.second is not None]
