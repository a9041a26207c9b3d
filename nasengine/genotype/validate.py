"""Validation of genotype documents (version 2; version 1 upgraded in memory) into resolved graphs.

:func:`resolve` checks every field and returns a :class:`Resolved` (the upgraded document, the
macro graph and the cell types, see :mod:`.graph`); :func:`validate` returns the document only.
Every error is a :class:`GenotypeError` whose ``path`` names the bad field.

Checks, in order: top-level fields; each cell type (``cells[i]``: its nodes, edges, channel
multipliers and relative levels); the macro graph: node and edge fields, known ops, dangling
edges, edges into an input or out of the output, nodes without input or output edges, cycles,
input slots, resolution levels (derived when absent, checked when present), gate pruning with
dead-node removal (the output must stay reachable), then the channels of every live edge and
node under its merge rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ops import OPS
from .core import (
    COMBINES,
    FORMAT,
    GENOTYPE_KINDS,
    NODE_KINDS,
    READABLE_VERSIONS,
    RESAMPLE,
    ROLES,
    VERSION,
    GenotypeError,
    check_json_value,
    is_int,
    is_num,
)
from .graph import ResolvedEdge, ResolvedGraph, ResolvedNode, topological_order

__all__ = ["Resolved", "resolve", "validate", "upgrade"]

_TOP_KEYS = {
    "format", "version", "method", "in_channels", "out_channels", "nodes", "edges",
    "cells", "gates", "derived", "meta", "continuous", "kind",
}
_CELL_KEYS = {"name", "inputs", "nodes", "edges", "channel_rule"}


@dataclass(frozen=True)
class Resolved:
    """A validated genotype: ``doc`` (version 2), ``graph`` (the macro network) and ``cells``
    (cell types by name, channels as multipliers of C, levels relative to ``in0``)."""

    doc: dict
    graph: ResolvedGraph
    cells: dict[str, ResolvedGraph]


def upgrade(doc: dict) -> dict:
    """A version-1 document as version 2 (a shallow copy: v1 is v2 with every node summing its
    inputs, no node ops and no cells); a version-2 document is returned as it is."""
    if doc.get("version") == 1:
        return {**doc, "version": VERSION}
    return doc


def validate(doc: Any) -> dict:
    """Check a genotype document; returns it (a version-1 document as an upgraded copy).

    Raises:
        GenotypeError: with the path of the first bad field.
    """
    return resolve(doc).doc


def resolve(doc: Any) -> Resolved:
    """Validate ``doc`` and resolve its graphs (see the module docstring)."""
    if not isinstance(doc, dict):
        raise GenotypeError("$", f"a genotype is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise GenotypeError("format", f"must be {FORMAT!r}, got {doc.get('format')!r}")
    if not is_int(doc.get("version")) or doc["version"] not in READABLE_VERSIONS:
        raise GenotypeError("version", f"unsupported version {doc.get('version')!r}; this engine reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    doc = upgrade(doc)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise GenotypeError(sorted(unknown)[0], "unknown field")
    if not isinstance(doc.get("method"), str) or not doc["method"]:
        raise GenotypeError("method", "must be a non-empty string")
    for key in ("in_channels", "out_channels"):
        if not is_int(doc.get(key)) or doc[key] < 1:
            raise GenotypeError(key, f"must be a positive integer, got {doc.get(key)!r}")
    if not isinstance(doc.get("continuous", False), bool):
        raise GenotypeError("continuous", "must be true or false")
    if "kind" in doc and doc["kind"] not in GENOTYPE_KINDS:
        raise GenotypeError("kind", f"must be one of {', '.join(GENOTYPE_KINDS)}, got {doc['kind']!r}")
    for key in ("derived", "meta"):
        if doc.get(key) is not None:
            if not isinstance(doc[key], dict):
                raise GenotypeError(key, "must be an object")
            check_json_value(doc[key], key)
    threshold = _gate_threshold(doc.get("gates"))
    cells = _resolve_cell_types(doc.get("cells", []))
    graph = _GraphResolver(doc.get("nodes"), doc.get("edges"), prefix="", cells=cells, threshold=threshold,
                           in_channels=doc["in_channels"], out_channels=doc["out_channels"]).resolve()
    return Resolved(doc, graph, cells)


def _gate_threshold(gates: Any) -> float | None:
    if gates is None:
        return None
    if not isinstance(gates, dict):
        raise GenotypeError("gates", 'must be an object {"threshold": number}')
    for key in gates:
        if key != "threshold":
            raise GenotypeError(f"gates.{key}", "unknown field")
    if not is_num(gates.get("threshold")):
        raise GenotypeError("gates.threshold", f"must be a finite number, got {gates.get('threshold')!r}")
    return float(gates["threshold"])


def _resolve_cell_types(cells: Any) -> dict[str, ResolvedGraph]:
    if not isinstance(cells, list):
        raise GenotypeError("cells", "must be a list of cell types")
    out: dict[str, ResolvedGraph] = {}
    for i, cell in enumerate(cells):
        p = f"cells[{i}]"
        if not isinstance(cell, dict):
            raise GenotypeError(p, "a cell type is an object {name, inputs, nodes, edges, channel_rule}")
        unknown = set(cell) - _CELL_KEYS
        if unknown:
            raise GenotypeError(f"{p}.{sorted(unknown)[0]}", "unknown field")
        name = cell.get("name")
        if not isinstance(name, str) or not name:
            raise GenotypeError(f"{p}.name", "must be a non-empty string")
        if name in out:
            raise GenotypeError(f"{p}.name", f"duplicate cell type {name!r}")
        n_in = cell.get("inputs")
        if not is_int(n_in) or n_in < 1:
            raise GenotypeError(f"{p}.inputs", f"must be a positive integer, got {n_in!r}")
        graph = _GraphResolver(cell.get("nodes"), cell.get("edges"), prefix=f"{p}.", cells=None, threshold=None,
                               n_inputs=n_in).resolve()
        rule = cell.get("channel_rule", {})
        if not isinstance(rule, dict):
            raise GenotypeError(f"{p}.channel_rule", 'must be an object {"output_multiplier": k}')
        for key in rule:
            if key != "output_multiplier":
                raise GenotypeError(f"{p}.channel_rule.{key}", "unknown field")
        k = graph.nodes[graph.output].channels
        if "output_multiplier" in rule and rule["output_multiplier"] != k:
            raise GenotypeError(f"{p}.channel_rule.output_multiplier",
                                f"the output node {graph.output!r} has {k} x C channels, not {rule['output_multiplier']!r} x C")
        out[name] = graph
    return out


class _GraphResolver:
    """Validates and resolves one graph: the network (``cells`` given) or a cell type (``n_inputs`` given)."""

    def __init__(self, nodes: Any, edges: Any, *, prefix: str, cells: dict[str, ResolvedGraph] | None,
                 threshold: float | None, in_channels: int = 0, out_channels: int = 0, n_inputs: int = 0):
        self.raw_nodes, self.raw_edges = nodes, edges
        self.prefix, self.cells, self.threshold = prefix, cells, threshold
        self.in_cell = cells is None
        self.in_channels, self.out_channels, self.n_inputs = in_channels, out_channels, n_inputs

    def width(self, nid: str) -> int:
        """Output channels of node ``nid``: its ``channels``, times the output multiplier of its
        cell type for a cell node (whose ``channels`` is the instance's C)."""
        n = self.by_id[nid]
        if "cell" in n:
            cell = self.cells[n["cell"]]
            return n["channels"] * cell.nodes[cell.output].channels
        return n["channels"]

    def path(self, tail: str) -> str:
        return f"{self.prefix}{tail}"

    def fail(self, tail: str, problem: str):
        raise GenotypeError(self.path(tail), problem)

    # ---- fields ---------------------------------------------------------------------------------
    def check_nodes(self) -> None:
        nodes = self.raw_nodes
        if not isinstance(nodes, list) or not nodes:
            self.fail("nodes", "must be a non-empty list")
        self.by_id: dict[str, dict] = {}
        self.index: dict[str, int] = {}
        for i, n in enumerate(nodes):
            self.check_node(i, n)
            self.by_id[n["id"]] = n
            self.index[n["id"]] = i
        inputs = [n for n in nodes if n["kind"] == "input"]
        outputs = [n for n in nodes if n["kind"] == "output"]
        if self.in_cell:
            want = [f"in{k}" for k in range(self.n_inputs)]
            if sorted(n["id"] for n in inputs) != sorted(want):
                self.fail("nodes", f"a cell type with {self.n_inputs} input(s) has input nodes {', '.join(want)}; found {', '.join(n['id'] for n in inputs) or 'none'}")
            self.inputs = tuple(want)
        else:
            if len(inputs) != 1:
                self.fail("nodes", f"needs exactly one input node, found {len(inputs)}")
            self.inputs = (inputs[0]["id"],)
        if len(outputs) != 1:
            self.fail("nodes", f"needs exactly one output node, found {len(outputs)}")
        self.output = outputs[0]["id"]
        if not self.in_cell:
            if inputs[0]["channels"] != self.in_channels:
                self.fail(f"nodes[{self.index[inputs[0]['id']]}].channels", f"input node has {inputs[0]['channels']} channels but in_channels is {self.in_channels}")
            if self.width(self.output) != self.out_channels:
                self.fail(f"nodes[{self.index[self.output]}].channels", f"output node has {self.width(self.output)} channels but out_channels is {self.out_channels}")

    def check_node(self, i: int, n: Any) -> None:
        p = f"nodes[{i}]"
        if not isinstance(n, dict):
            self.fail(p, "must be an object")
        if not isinstance(n.get("id"), str) or not n["id"]:
            self.fail(f"{p}.id", "must be a non-empty string")
        if n["id"] in self.by_id:
            self.fail(f"{p}.id", f"duplicate node id {n['id']!r}")
        if n.get("kind") not in NODE_KINDS:
            self.fail(f"{p}.kind", f"must be one of {', '.join(NODE_KINDS)}, got {n.get('kind')!r}")
        if not is_int(n.get("channels")) or n["channels"] < 1:
            what = "a positive integer (a multiplier of the instance's channels C)" if self.in_cell else "a positive integer"
            self.fail(f"{p}.channels", f"must be {what}, got {n.get('channels')!r}")
        for key in ("layer", "level"):
            if key in n and not is_int(n[key]):
                self.fail(f"{p}.{key}", f"must be an integer, got {n[key]!r}")
        if "level" in n and not self.in_cell and n["level"] < 0:
            self.fail(f"{p}.level", "must be >= 0")
        for key in ("stage", "position"):
            if key in n and not is_num(n[key]):
                self.fail(f"{p}.{key}", f"must be a number, got {n[key]!r}")
        if "active" in n and not isinstance(n["active"], bool):
            self.fail(f"{p}.active", "must be true or false")
        if "combine" in n and n["combine"] not in COMBINES:
            self.fail(f"{p}.combine", f"must be one of {', '.join(COMBINES)}, got {n['combine']!r}")
        if "op" in n:
            self.check_node_op(p, n)
        if "cell" in n:
            if self.in_cell:
                self.fail(f"{p}.cell", "cells do not nest: a cell type's nodes cannot be cells")
            if not isinstance(n["cell"], str) or n["cell"] not in self.cells:
                known = ", ".join(sorted(self.cells)) or "none"
                self.fail(f"{p}.cell", f"unknown cell type {n['cell']!r}; defined: {known}")
            if "op" in n:
                self.fail(f"{p}.op", "a cell node has no op (its value is the cell)")
            if "combine" in n:
                self.fail(f"{p}.combine", "a cell node takes its incoming edges as the cell's inputs (in slot order); it has no combine rule")
        if n["kind"] == "input":
            for key in ("op", "cell", "combine"):
                if key in n:
                    self.fail(f"{p}.{key}", "an input node has no incoming edges to merge")
        if n.get("combine") == "inputs" and ("op" not in n or not OPS[n["op"]["name"]].multi_input):
            self.fail(f"{p}.combine", "'inputs' passes the edges as separate inputs to a multi-input node op; give the node one (e.g. concat_conv_1x1x1)")
        if "op" in n and OPS[n["op"]["name"]].multi_input and n.get("combine") != "inputs":
            self.fail(f"{p}.op", f"{n['op']['name']} takes several inputs: the node needs combine 'inputs'")

    def check_node_op(self, p: str, n: dict) -> None:
        op = n["op"]
        if not isinstance(op, dict):
            self.fail(f"{p}.op", 'must be an object {"name": op, "params": {...}}')
        for key in op:
            if key not in ("name", "params"):
                self.fail(f"{p}.op.{key}", "unknown field")
        if op.get("name") not in OPS:
            self.fail(f"{p}.op.name", f"unknown op {op.get('name')!r}; known: {', '.join(sorted(OPS))}")
        spec = OPS[op["name"]]
        if spec.kind not in ("cell", "node"):
            self.fail(f"{p}.op.name", f"a node op keeps the resolution (kind cell or node); {spec.name} is a {spec.kind} op, put it on an edge")
        params = op.get("params", {})
        if not isinstance(params, dict):
            self.fail(f"{p}.op.params", "must be an object")
        check_json_value(params, self.path(f"{p}.op.params"))

    def check_edges(self) -> None:
        edges = self.raw_edges
        if not isinstance(edges, list):
            self.fail("edges", "must be a list")
        self.deltas: list[int] = []
        for i, e in enumerate(edges):
            self.deltas.append(self.check_edge(i, e))

    def check_edge(self, i: int, e: Any) -> int:
        p = f"edges[{i}]"
        if not isinstance(e, dict):
            self.fail(p, "must be an object")
        for key in ("source", "target"):
            if not isinstance(e.get(key), str) or e[key] not in self.by_id:
                self.fail(f"{p}.{key}", f"dangling edge: no node with id {e.get(key)!r}")
        src, tgt = self.by_id[e["source"]], self.by_id[e["target"]]
        if tgt["kind"] == "input":
            self.fail(f"{p}.target", "an edge cannot enter an input node")
        if src["kind"] == "output":
            self.fail(f"{p}.source", "an edge cannot leave the output node")
        op = e.get("op")
        if op not in OPS:
            self.fail(f"{p}.op", f"unknown op {op!r}; known: {', '.join(sorted(OPS))}")
        spec = OPS[op]
        if spec.multi_input:
            self.fail(f"{p}.op", f"{op} takes several inputs: it sits on a node (op with combine 'inputs'), not on an edge")
        resample = e.get("resample", "none")
        if not isinstance(resample, str) or resample not in RESAMPLE:
            self.fail(f"{p}.resample", f"must be one of down, up, none, got {e.get('resample')!r}")
        params = e.get("params", {})
        if not isinstance(params, dict):
            self.fail(f"{p}.params", "must be an object")
        check_json_value(params, self.path(f"{p}.params"))
        for key in ("weight", "gate"):
            if key in e and not is_num(e[key]):
                self.fail(f"{p}.{key}", f"must be a finite number, got {e[key]!r}")
        if "gate" in e and self.in_cell:
            self.fail(f"{p}.gate", "gates prune edges of the network, not inside a cell type")
        if "slot" in e and (not is_int(e["slot"]) or e["slot"] < 0):
            self.fail(f"{p}.slot", f"must be an integer >= 0, got {e['slot']!r}")
        if "role" in e and e["role"] not in ROLES:
            self.fail(f"{p}.role", f"must be one of {', '.join(ROLES)}, got {e['role']!r}")
        if "selected" in e and not isinstance(e["selected"], bool):
            self.fail(f"{p}.selected", "must be true or false")
        ow = e.get("op_weights")
        if ow is not None:
            if not isinstance(ow, dict):
                self.fail(f"{p}.op_weights", "must be an object {op name: weight}")
            for k, v in ow.items():
                if k not in OPS:
                    self.fail(f"{p}.op_weights.{k}", "unknown op")
                if not is_num(v):
                    self.fail(f"{p}.op_weights.{k}", f"must be a finite number, got {v!r}")
        try:
            delta = spec.level_delta(**params) if spec.kind != "cell" else RESAMPLE[resample]
        except (TypeError, ValueError) as exc:
            self.fail(f"{p}.params", f"bad parameters for {op}: {exc}")
        if spec.kind != "cell" and (delta > 0) - (delta < 0) != RESAMPLE[resample]:
            self.fail(f"{p}.resample", f"op {op} changes the level by {delta:+d}, so resample must be {['none', 'down', 'up'][(delta > 0) - (delta < 0)]!r}")
        return int(delta)

    # ---- structure ------------------------------------------------------------------------------
    def check_structure(self) -> None:
        edges = self.raw_edges
        has_in = {nid: False for nid in self.by_id}
        has_out = {nid: False for nid in self.by_id}
        for e in edges:
            has_out[e["source"]] = True
            has_in[e["target"]] = True
        for i, n in enumerate(self.raw_nodes):
            if n["kind"] != "input" and not has_in[n["id"]]:
                self.fail(f"nodes[{i}]", f"node {n['id']!r} has no input edge")
            if n["kind"] != "output" and not has_out[n["id"]]:
                self.fail(f"nodes[{i}]", f"node {n['id']!r} has no output edge")
        self.order = topological_order(list(self.by_id), [(e["source"], e["target"]) for e in edges], self.path("edges"))
        # incoming edges in merge order: by slot when the edges give one, else in list order
        self.incoming: dict[str, list[int]] = {nid: [] for nid in self.by_id}
        for k, e in enumerate(edges):
            self.incoming[e["target"]].append(k)
        for nid, inc in self.incoming.items():
            with_slot = [k for k in inc if "slot" in edges[k]]
            if with_slot and len(with_slot) != len(inc):
                k = next(k for k in inc if "slot" not in edges[k])
                self.fail(f"edges[{k}].slot", f"give a slot on every edge into {nid!r} or on none")
            seen: dict[int, int] = {}
            for k in with_slot:
                if edges[k]["slot"] in seen:
                    self.fail(f"edges[{k}].slot", f"slot {edges[k]['slot']} into {nid!r} is taken by edges[{seen[edges[k]['slot']]}]")
                seen[edges[k]["slot"]] = k
            if with_slot:
                inc.sort(key=lambda k: edges[k]["slot"])
            node = self.by_id[nid]
            if "cell" in node and len(inc) != len(self.cells[node["cell"]].inputs):
                self.fail(f"nodes[{self.index[nid]}]", f"cell type {node['cell']!r} takes {len(self.cells[node['cell']].inputs)} input(s); {len(inc)} edge(s) enter {nid!r}")

    def derive_levels(self) -> None:
        """Level of every node: given, or propagated along the edges from the inputs; checked."""
        edges = self.raw_edges
        self.level: dict[str, int] = {}
        for nid in self.order:
            n = self.by_id[nid]
            i = self.index[nid]
            if n["kind"] == "input":
                want = 0 if (not self.in_cell or nid == "in0") else n.get("level", 0)
                if "level" in n and n["level"] != want:
                    where = "the network input is level 0 by definition" if not self.in_cell else "levels in a cell are relative to in0"
                    self.fail(f"nodes[{i}].level", f"must be {want}: {where}")
                self.level[nid] = want
                continue
            cell = self.cells[n["cell"]] if "cell" in n else None
            derived = n.get("level")
            for slot, k in enumerate(self.incoming[nid]):
                e = edges[k]
                got = self.level[e["source"]] + self.deltas[k]
                if cell is not None:  # the edge feeds cell input `slot`; the node is the cell's output
                    got += cell.nodes[cell.output].level - cell.nodes[cell.inputs[slot]].level
                if derived is None:
                    derived = got
                elif got != derived:
                    src = e["source"]
                    self.fail(f"edges[{k}]", f"level mismatch: {src} (level {self.level[src]}) -> {nid} (level {derived}) but {e['op']} with resample {e.get('resample', 'none')} changes the level by {self.deltas[k]:+d}")
            if not self.in_cell and derived < 0:
                self.fail(f"nodes[{i}]", f"node {nid!r} would sit at level {derived}, above the input resolution")
            if cell is not None and not self.in_cell:
                base = derived - cell.nodes[cell.output].level
                low = base + min(cell.levels())
                if low < 0:
                    self.fail(f"nodes[{i}].cell", f"cell {n['cell']!r} here would reach level {low}, above the input resolution")
            self.level[nid] = derived

    def prune(self) -> tuple[set[int], set[str]]:
        """Edges and nodes left after gate pruning and dead-node removal."""
        edges = self.raw_edges
        live_edges = {k for k, e in enumerate(edges) if self.threshold is None or "gate" not in e or e["gate"] >= self.threshold}
        live_nodes = set(self.by_id)
        while True:
            has_in = {e["target"] for k, e in enumerate(edges) if k in live_edges}
            has_out = {e["source"] for k, e in enumerate(edges) if k in live_edges}
            dead = {nid for nid in live_nodes
                    if (self.by_id[nid]["kind"] != "input" and nid not in has_in)
                    or (self.by_id[nid]["kind"] != "output" and nid not in has_out)}
            if not dead:
                break
            live_nodes -= dead
            live_edges = {k for k in live_edges if edges[k]["source"] in live_nodes and edges[k]["target"] in live_nodes}
        if self.output not in live_nodes or not set(self.inputs) <= live_nodes:
            self.fail("gates.threshold" if not self.prefix else "edges",
                      f"with gate threshold {self.threshold} the output {self.output!r} is no longer reachable from the input")
        for nid in live_nodes:
            n = self.by_id[nid]
            if "cell" in n or (n.get("combine") == "inputs" and OPS[n["op"]["name"]].arity > 1):
                for k in self.incoming[nid]:
                    if k not in live_edges:
                        self.fail(f"edges[{k}].gate", f"pruning this edge takes an input away from {nid!r}, which needs all of its inputs")
        return live_edges, live_nodes

    # ---- channels -------------------------------------------------------------------------------
    def resolve(self) -> ResolvedGraph:
        self.check_nodes()
        self.check_edges()
        self.check_structure()
        self.derive_levels()
        live_edges, live_nodes = self.prune()
        edges = self.raw_edges
        nodes: dict[str, ResolvedNode] = {}
        c_out_of: dict[int, int] = {}
        for n in self.raw_nodes:
            nid = n["id"]
            if nid not in live_nodes:
                continue
            i = self.index[nid]
            inc = tuple(k for k in self.incoming[nid] if k in live_edges)
            channels = self.width(nid)
            node = ResolvedNode(id=nid, index=i, kind=n["kind"], channels=channels, level=self.level[nid],
                                combine=n.get("combine", "sum"), inputs=inc)
            if n["kind"] == "input":
                nodes[nid] = node
                continue
            srcs = [self.width(edges[k]["source"]) for k in inc]
            op = n.get("op")
            op_c_in: int | tuple[int, ...] = channels
            if "cell" in n:
                cell = self.cells[n["cell"]]
                c = n["channels"]  # the instance's C; the node outputs output_multiplier x C
                for slot, k in enumerate(inc):
                    c_out_of[k] = c * cell.nodes[cell.inputs[slot]].channels
                node = ResolvedNode(id=nid, index=i, kind=n["kind"], channels=channels, level=self.level[nid], combine="cell",
                                    inputs=inc, cell=n["cell"], cell_channels=c, cell_level=self.level[nid] - cell.nodes[cell.output].level)
            elif node.combine in ("sum", "weighted_sum"):
                for k in inc:
                    c_out_of[k] = channels
                    if node.combine == "weighted_sum" and "weight" not in edges[k]:
                        self.fail(f"edges[{k}].weight", f"required: {nid!r} is a weighted sum of its incoming edges")
            else:  # concat / inputs: every edge keeps its source's channels
                for k, c in zip(inc, srcs):
                    c_out_of[k] = c
                op_c_in = tuple(srcs) if node.combine == "inputs" else sum(srcs)
                if node.combine == "concat" and op is None and sum(srcs) != channels:
                    self.fail(f"nodes[{i}].channels", f"{nid!r} concatenates {' + '.join(map(str, srcs))} = {sum(srcs)} channels, not {channels}")
                if node.combine == "inputs" and OPS[op["name"]].arity > 1 and len(inc) != OPS[op["name"]].arity:
                    self.fail(f"nodes[{i}].op", f"{op['name']} takes {OPS[op['name']].arity} inputs; {len(inc)} edge(s) enter {nid!r}")
            if op is not None:
                node = ResolvedNode(id=nid, index=i, kind=n["kind"], channels=channels, level=self.level[nid],
                                    combine=node.combine, inputs=inc, op=op["name"], op_params=dict(op.get("params", {})),
                                    op_c_in=op_c_in)
            nodes[nid] = node
        resolved_edges: dict[int, ResolvedEdge] = {}
        for k, e in enumerate(edges):
            if k not in live_edges:
                continue
            c_in, c_out = self.width(e["source"]), c_out_of[k]
            spec = OPS[e["op"]]
            resample = e.get("resample", "none")
            if spec.same_channels and resample == "none" and c_in != c_out:
                self.fail(f"edges[{k}]", f"channel mismatch: {e['op']} keeps channels but {e['source']} has {c_in} and {e['target']} takes {c_out}")
            resolved_edges[k] = ResolvedEdge(index=k, source=e["source"], target=e["target"], op=e["op"], resample=resample,
                                             params=dict(e.get("params", {}) or {}), c_in=c_in, c_out=c_out,
                                             weight=float(e["weight"]) if "weight" in e else None)
        order = tuple(topological_order([nid for nid in self.by_id if nid in live_nodes],
                                        [(e.source, e.target) for e in resolved_edges.values()], self.path("edges")))
        return ResolvedGraph(nodes=nodes, edges=resolved_edges, order=order, inputs=self.inputs, output=self.output,
                             pruned_edges=tuple(k for k in range(len(edges)) if k not in live_edges),
                             dead_nodes=tuple(nid for nid in self.by_id if nid not in live_nodes))
