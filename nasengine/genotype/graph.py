"""The resolved form of a validated genotype graph: what the builder, the figures and the hash read.

Validation (:mod:`.validate`) turns the JSON document into :class:`ResolvedGraph` objects: gates
pruned and dead nodes dropped, levels derived, every edge's input and output channels and every
node's merge rule fixed, incoming edges in ``slot`` order. A cell type resolves once, with channels
as multipliers of the instance's C and levels relative to its first input;
:func:`instantiate` scales it for one cell node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .core import GenotypeError

__all__ = ["ResolvedEdge", "ResolvedNode", "ResolvedGraph", "instantiate", "max_level", "topological_order"]


@dataclass(frozen=True)
class ResolvedEdge:
    """One live edge.

    Attributes:
        index: position in the document's ``edges`` list (for error paths and names).
        c_in, c_out: channels the edge module maps (source's channels -> what the target takes).
        weight: the stored weight (used by a ``weighted_sum`` target), else None.
    """

    index: int
    source: str
    target: str
    op: str
    resample: str
    params: dict
    c_in: int
    c_out: int
    weight: float | None


@dataclass(frozen=True)
class ResolvedNode:
    """One live node.

    Attributes:
        index: position in the document's ``nodes`` list.
        channels: output channels (a multiplier of C inside a cell type); for a cell node the
            cell's output channels, ``output_multiplier x cell_channels``.
        level: resolution level (absolute in a network, relative to ``in0`` in a cell type).
        combine: ``sum``, ``concat``, ``weighted_sum``, ``inputs`` or ``cell`` (a cell node).
        op, op_params, op_c_in: the node op, its parameters and its input channels (an int, or the
            tuple of the inputs' channels for a multi-input op); ``op`` is None without one.
        cell, cell_channels, cell_level: for a cell node, the cell type, the instance's C and the
            level of its first input.
        inputs: indices (into the document's edges) of the live incoming edges, in merge order.
    """

    id: str
    index: int
    kind: str
    channels: int
    level: int
    combine: str
    inputs: tuple[int, ...]
    op: str | None = None
    op_params: dict = dataclasses.field(default_factory=dict)
    op_c_in: int | tuple[int, ...] = 0
    cell: str | None = None
    cell_channels: int = 0
    cell_level: int = 0


@dataclass(frozen=True)
class ResolvedGraph:
    """A validated graph with gates pruned.

    Attributes:
        nodes: live nodes by id, in document order.
        edges: live edges by document index, in document order.
        order: live node ids in topological order.
        inputs: ids of the input nodes (one for a network; ``in0, in1, ...`` for a cell type).
        output: id of the output node.
        pruned_edges: document indices of the edges dropped (gate below threshold or touching a dead node).
        dead_nodes: ids of the nodes dropped with them.
    """

    nodes: dict[str, ResolvedNode]
    edges: dict[int, ResolvedEdge]
    order: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    pruned_edges: tuple[int, ...] = ()
    dead_nodes: tuple[str, ...] = ()

    def levels(self) -> list[int]:
        """Levels of the live nodes."""
        return [n.level for n in self.nodes.values()]


def instantiate(cell: ResolvedGraph, channels: int, level: int) -> ResolvedGraph:
    """A cell type at instance channels C = ``channels`` whose first input is at ``level``."""

    def scale(c):
        return tuple(int(x) * channels for x in c) if isinstance(c, tuple) else int(c) * channels

    nodes = {
        nid: dataclasses.replace(n, channels=n.channels * channels, level=n.level + level, op_c_in=scale(n.op_c_in))
        for nid, n in cell.nodes.items()
    }
    edges = {k: dataclasses.replace(e, c_in=e.c_in * channels, c_out=e.c_out * channels) for k, e in cell.edges.items()}
    return dataclasses.replace(cell, nodes=nodes, edges=edges)


def max_level(graph: ResolvedGraph, cells: dict[str, ResolvedGraph]) -> int:
    """Deepest resolution level anywhere in ``graph``, inside its cell instances included."""
    deepest = max(graph.levels())
    for n in graph.nodes.values():
        if n.cell is not None:
            deepest = max(deepest, max_level(instantiate(cells[n.cell], n.cell_channels, n.cell_level), cells))
    return deepest


def topological_order(node_ids: list[str], edges: list[tuple[str, str]], path: str = "edges") -> list[str]:
    """Kahn's algorithm; raises ``GenotypeError(path, ...)`` naming a node on a cycle."""
    indeg = {n: 0 for n in node_ids}
    out: dict[str, list[str]] = {n: [] for n in node_ids}
    for s, t in edges:
        out[s].append(t)
        indeg[t] += 1
    ready = [n for n in node_ids if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop()
        order.append(n)
        for t in out[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    if len(order) != len(node_ids):
        stuck = sorted(n for n in node_ids if indeg[n] > 0)
        raise GenotypeError(path, f"the graph has a cycle through node(s) {', '.join(stuck[:5])}")
    return order
