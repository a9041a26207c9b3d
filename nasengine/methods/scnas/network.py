"""The discrete network of an SCNAS genotype document (:mod:`.genotypes`).

Built from the document alone (any registered op on any edge, built through the op registry
``OPS[name].build(c_in, c_out)``), so an edited genotype builds as written. The wiring is fixed
at construction (tuples of ints), so ``forward`` has no data-dependent control flow and
``torch.export`` / ONNX trace it into a static graph.

Semantics: a macro node is the sum of its incoming edges, except a ``cell`` node, which applies
its cell type to its incoming edges (one per cell input, in ``slot`` order). Inside a cell an
intermediate node is the sum of its edges and ``out`` the channel concat of its inputs in
``slot`` order. A cell input that no edge of the cell reads gets no preprocessing module.

Shapes: ``[B, in_channels, *S] -> [B, out_channels, *S]``, S divisible by ``2 ** depth``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn as nn

from ...genotype.format import GenotypeError, topological_order
from ...ops import OPS

__all__ = ["ParsedCell", "ParsedMacro", "parse_genotype", "SCNASNetwork", "build_network"]


@dataclasses.dataclass(frozen=True)
class ParsedCell:
    """A cell type in index form: ``edges`` = ``(source, target, op name)`` over local node
    indices (0, 1 = inputs, then the intermediate nodes in topological order), ``concat`` =
    node indices of the output concat in slot order, ``used_inputs`` per input."""

    name: str
    node_ids: tuple[str, ...]
    edges: tuple[tuple[int, int, str], ...]
    concat: tuple[int, ...]
    used_inputs: tuple[bool, ...]

    @property
    def output_multiplier(self) -> int:
        return len(self.concat)


@dataclasses.dataclass(frozen=True)
class ParsedMacro:
    """The macro graph: nodes in topological order with their channels and, for cell nodes,
    the cell type; ``incoming[i]`` = ``(edge index, source node index)`` sorted by slot."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    channels: tuple[int, ...]  # cell nodes: the width C of each node inside the cell
    widths: tuple[int, ...]  # output channels (C x output multiplier for cell nodes)
    cell_of: tuple[str | None, ...]
    incoming: tuple[tuple[tuple[int, int], ...], ...]
    edges: tuple[dict, ...]
    cells: dict[str, ParsedCell]
    levels: tuple[int, ...]


def _slot_order(edges: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    return sorted(edges, key=lambda ke: (ke[1].get("slot", ke[0]), ke[0]))


def _parse_cell(i: int, cell: dict) -> ParsedCell:
    p = f"cells[{i}]"
    nodes = cell.get("nodes") or []
    ids = [n["id"] for n in nodes]
    inputs = [n["id"] for n in nodes if n.get("kind") == "input"]
    outputs = [n["id"] for n in nodes if n.get("kind") == "output"]
    if inputs != [f"in{k}" for k in range(int(cell.get("inputs", 2)))]:
        raise GenotypeError(f"{p}.nodes", f"cell inputs must be in0..in{int(cell.get('inputs', 2)) - 1}, got {inputs}")
    if len(outputs) != 1:
        raise GenotypeError(f"{p}.nodes", "a cell type needs exactly one output node")
    pairs = [(e["source"], e["target"]) for e in cell["edges"]]
    for k, (s, t) in enumerate(pairs):
        for key, v in (("source", s), ("target", t)):
            if v not in ids:
                raise GenotypeError(f"{p}.edges[{k}].{key}", f"no node {v!r} in cell {cell.get('name')!r}")
    order = [n for n in topological_order(ids, pairs) if n not in inputs and n not in outputs]
    index = {n: k for k, n in enumerate(inputs + order)}
    edges, concat = [], []
    for k, e in _slot_order(list(enumerate(cell["edges"]))):
        if e["target"] == outputs[0]:
            concat.append(index[e["source"]])
        else:
            if e["op"] not in OPS:
                raise GenotypeError(f"{p}.edges[{k}].op", f"unknown op {e['op']!r}")
            edges.append((index[e["source"]], index[e["target"]], e["op"]))
    edges.sort(key=lambda st: st[1])  # by target node, stable
    used = tuple(any(s == k for s, _, _ in edges) for k in range(len(inputs)))
    return ParsedCell(cell["name"], tuple(inputs + order), tuple(edges), tuple(concat), used)


def parse_genotype(doc: dict[str, Any]) -> ParsedMacro:
    """Index form of an SCNAS genotype (raises ``GenotypeError`` naming the bad field)."""
    cells = {}
    for i, c in enumerate(doc.get("cells") or []):
        parsed = _parse_cell(i, c)
        cells[parsed.name] = parsed
    nodes = doc["nodes"]
    by_id = {n["id"]: n for n in nodes}
    order = topological_order(list(by_id), [(e["source"], e["target"]) for e in doc["edges"]])
    pos = {nid: k for k, nid in enumerate(order)}
    incoming: list[list[tuple[int, dict]]] = [[] for _ in order]
    for k, e in enumerate(doc["edges"]):
        incoming[pos[e["target"]]].append((k, e))
    widths, channels, cell_of, levels = [], [], [], []
    level_of: dict[str, int] = {}
    for nid in order:
        n = by_id[nid]
        c = int(n["channels"])
        cell = n.get("cell")
        if cell is not None and cell not in cells:
            raise GenotypeError(f"nodes[{nodes.index(n)}].cell", f"no cell type {cell!r} in cells")
        channels.append(c)  # a cell node's channels: the instance's C
        widths.append(c * cells[cell].output_multiplier if cell else c)
        cell_of.append(cell)
        levels.append(int(n.get("stage", 0)))
        level_of[nid] = levels[-1]
    return ParsedMacro(
        ids=tuple(order), kinds=tuple(by_id[n]["kind"] for n in order), channels=tuple(channels),
        widths=tuple(widths), cell_of=tuple(cell_of),
        incoming=tuple(tuple((k, pos[e["source"]]) for k, e in _slot_order(inc)) for inc in incoming),
        edges=tuple(doc["edges"]), cells=cells, levels=tuple(levels))


class DiscreteCell(nn.Module):
    """One cell instance: ``forward(inputs)`` with the preprocessed inputs (None for unused
    ones) returns the concat of the cell's output nodes, ``[B, k C, *S]``."""

    def __init__(self, cell: ParsedCell, c: int):
        super().__init__()
        self.ops = nn.ModuleList(OPS[op].build(c, c) for _, _, op in cell.edges)
        self.num_inputs = len(cell.used_inputs)
        self.num_states = len(cell.node_ids)
        plan = []
        for node in range(self.num_inputs, self.num_states):
            plan.append(tuple((k, s) for k, (s, t, _) in enumerate(cell.edges) if t == node))
        self.plan = tuple(plan)
        self.concat = cell.concat

    def forward(self, inputs: list[torch.Tensor | None]) -> torch.Tensor:
        states: list[torch.Tensor | None] = list(inputs)
        for inc in self.plan:
            total = None
            for k, s in inc:
                y = self.ops[k](states[s])
                total = y if total is None else total + y
            states.append(total)
        return torch.cat([states[k] for k in self.concat], dim=1)


class SCNASNetwork(nn.Module):
    """The network of a discrete SCNAS genotype (see the module docstring)."""

    def __init__(self, doc: dict[str, Any]):
        super().__init__()
        m = parse_genotype(doc)
        self.edge_ops = nn.ModuleDict()
        self.cells = nn.ModuleDict()
        plan = []
        for i, nid in enumerate(m.ids):
            if m.kinds[i] == "input":
                self.input_pos = i
                continue
            cell = m.cells[m.cell_of[i]] if m.cell_of[i] else None
            inc = []
            for slot, (k, s) in enumerate(m.incoming[i]):
                if cell is not None and not cell.used_inputs[slot]:
                    inc.append((None, s))
                    continue
                e = m.edges[k]
                c_out = m.channels[i] if cell is not None else m.widths[i]
                self.edge_ops[str(k)] = OPS[e["op"]].build(m.widths[s], c_out, **(e.get("params") or {}))
                inc.append((str(k), s))
            if cell is not None:
                if len(inc) != len(cell.used_inputs):
                    raise GenotypeError(f"nodes[{i}]", f"cell node {nid!r} has {len(inc)} inputs, its cell type takes {len(cell.used_inputs)}")
                self.cells[nid] = DiscreteCell(cell, m.channels[i])
            plan.append((i, nid if cell is not None else None, tuple(inc)))
            if m.kinds[i] == "output":
                self.output_pos = i
        last_use: dict[int, int] = {}
        for i, _, inc in plan:
            for _, s in inc:
                last_use[s] = i
        self.plan = tuple((i, cell, inc, tuple(s for s, last in last_use.items() if last == i))
                          for i, cell, inc in plan)
        self.num_nodes = len(m.ids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor | None] = [None] * self.num_nodes
        feats[self.input_pos] = x
        for i, cell, inc, free in self.plan:
            if cell is not None:
                feats[i] = self.cells[cell]([None if k is None else self.edge_ops[k](feats[s]) for k, s in inc])
            else:
                total = None
                for k, s in inc:
                    y = self.edge_ops[k](feats[s])
                    total = y if total is None else total + y
                feats[i] = total
            for s in free:
                feats[s] = None
        return feats[self.output_pos]


def build_network(doc: dict[str, Any]) -> SCNASNetwork:
    """The network of a discrete SCNAS genotype (weights freshly initialised)."""
    if doc.get("continuous"):
        raise GenotypeError("continuous", "a continuous snapshot is not a discrete architecture; decode it first")
    return SCNASNetwork(doc)
