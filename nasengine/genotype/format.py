"""The versioned JSON architecture format: validation, load and dump.

A genotype is plain JSON data (see ``schema.json`` next to this file)::

    {"format": "voxelsearch-genotype", "version": 1, "method": "dints",
     "in_channels": 1, "out_channels": 3,
     "nodes": [{"id": "in", "kind": "input", "layer": -1, "level": 0, "channels": 1}, ...],
     "edges": [{"source": "in", "target": "n0_1", "op": "stem", "resample": "down",
                "params": {"factor": 2}, "weight": 1.0}, ...],
     "cells": [], "derived": {...}, "meta": {...}, "continuous": false}

``level`` is the resolution level: ``log2`` of the downsampling factor relative to the network
input (the input and the output are at level 0). An edge either carries a cell op (same
resolution) after an optional 2x ``resample`` (``down``/``up``), or a non-cell op (``down``,
``up``, ``stem``, ``head_up``, ``head_out``) that changes the level by itself; ``resample`` then
states the direction of that change. A node sums its incoming edges.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..ops import OPS

__all__ = ["FORMAT", "VERSION", "GenotypeError", "validate", "load", "dump", "loads", "dumps", "topological_order"]

FORMAT = "voxelsearch-genotype"
VERSION = 1
NODE_KINDS = ("input", "feature", "output")
RESAMPLE = {"none": 0, "down": 1, "up": -1}
_TOP_KEYS = {
    "format", "version", "method", "in_channels", "out_channels", "nodes", "edges",
    "cells", "derived", "meta", "continuous",
}


class GenotypeError(ValueError):
    """A genotype document is malformed. ``path`` names the bad field, e.g. ``edges[3].op``."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_json_value(v: Any, path: str) -> None:
    if v is None or isinstance(v, (str, bool)) or _is_num(v):
        return
    if isinstance(v, list):
        for i, x in enumerate(v):
            _check_json_value(x, f"{path}[{i}]")
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise GenotypeError(path, f"keys must be strings, got {k!r}")
            _check_json_value(x, f"{path}.{k}")
        return
    raise GenotypeError(path, f"not a JSON value: {type(v).__name__}")


def topological_order(node_ids: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Kahn's algorithm; raises ``GenotypeError('edges', ...)`` naming a node on a cycle."""
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
        raise GenotypeError("edges", f"the graph has a cycle through node(s) {', '.join(stuck[:5])}")
    return order


def validate(doc: Any) -> dict:
    """Check a genotype document; returns it unchanged or raises :class:`GenotypeError`.

    Checks: format and version, field types, unique node ids, one input and one output node
    whose channels match ``in_channels``/``out_channels``, known ops, resample names, dangling
    edges (unknown endpoints), edges into the input or out of the output, nodes without input or
    output edges, cycles, resolution levels and channel counts along every edge.
    """
    if not isinstance(doc, dict):
        raise GenotypeError("$", f"a genotype is a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise GenotypeError("format", f"must be {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("version") != VERSION or not _is_int(doc.get("version")):
        raise GenotypeError("version", f"unsupported version {doc.get('version')!r}; this engine reads version {VERSION}")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise GenotypeError(sorted(unknown)[0], "unknown field")
    if not isinstance(doc.get("method"), str) or not doc["method"]:
        raise GenotypeError("method", "must be a non-empty string")
    for key in ("in_channels", "out_channels"):
        if not _is_int(doc.get(key)) or doc[key] < 1:
            raise GenotypeError(key, f"must be a positive integer, got {doc.get(key)!r}")
    continuous = doc.get("continuous", False)
    if not isinstance(continuous, bool):
        raise GenotypeError("continuous", "must be true or false")
    for key in ("derived", "meta"):
        if key in doc and doc[key] is not None:
            if not isinstance(doc[key], dict):
                raise GenotypeError(key, "must be an object")
            _check_json_value(doc[key], key)
    if "cells" in doc and not isinstance(doc["cells"], list):
        raise GenotypeError("cells", "must be a list")
    _check_json_value(doc.get("cells", []), "cells")

    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise GenotypeError("nodes", "must be a non-empty list")
    by_id: dict[str, dict] = {}
    for i, n in enumerate(nodes):
        p = f"nodes[{i}]"
        if not isinstance(n, dict):
            raise GenotypeError(p, "must be an object")
        if not isinstance(n.get("id"), str) or not n["id"]:
            raise GenotypeError(f"{p}.id", "must be a non-empty string")
        if n["id"] in by_id:
            raise GenotypeError(f"{p}.id", f"duplicate node id {n['id']!r}")
        if n.get("kind") not in NODE_KINDS:
            raise GenotypeError(f"{p}.kind", f"must be one of {', '.join(NODE_KINDS)}, got {n.get('kind')!r}")
        for key in ("layer", "level"):
            if not _is_int(n.get(key)):
                raise GenotypeError(f"{p}.{key}", f"must be an integer, got {n.get(key)!r}")
        if n["level"] < 0:
            raise GenotypeError(f"{p}.level", "must be >= 0")
        if not _is_int(n.get("channels")) or n["channels"] < 1:
            raise GenotypeError(f"{p}.channels", f"must be a positive integer, got {n.get('channels')!r}")
        by_id[n["id"]] = n
    index = {n["id"]: i for i, n in enumerate(nodes)}
    inputs = [n for n in nodes if n["kind"] == "input"]
    outputs = [n for n in nodes if n["kind"] == "output"]
    if len(inputs) != 1:
        raise GenotypeError("nodes", f"needs exactly one input node, found {len(inputs)}")
    if len(outputs) != 1:
        raise GenotypeError("nodes", f"needs exactly one output node, found {len(outputs)}")
    if inputs[0]["channels"] != doc["in_channels"]:
        raise GenotypeError(f"nodes[{index[inputs[0]['id']]}].channels", f"input node has {inputs[0]['channels']} channels but in_channels is {doc['in_channels']}")
    if outputs[0]["channels"] != doc["out_channels"]:
        raise GenotypeError(f"nodes[{index[outputs[0]['id']]}].channels", f"output node has {outputs[0]['channels']} channels but out_channels is {doc['out_channels']}")

    edges = doc.get("edges")
    if not isinstance(edges, list):
        raise GenotypeError("edges", "must be a list")
    has_in = {nid: False for nid in by_id}
    has_out = {nid: False for nid in by_id}
    pairs = []
    for i, e in enumerate(edges):
        p = f"edges[{i}]"
        if not isinstance(e, dict):
            raise GenotypeError(p, "must be an object")
        for key in ("source", "target"):
            if e.get(key) not in by_id:
                raise GenotypeError(f"{p}.{key}", f"dangling edge: no node with id {e.get(key)!r}")
        src, tgt = by_id[e["source"]], by_id[e["target"]]
        if tgt["kind"] == "input":
            raise GenotypeError(f"{p}.target", "an edge cannot enter the input node")
        if src["kind"] == "output":
            raise GenotypeError(f"{p}.source", "an edge cannot leave the output node")
        op = e.get("op")
        if op not in OPS:
            raise GenotypeError(f"{p}.op", f"unknown op {op!r}; known: {', '.join(sorted(OPS))}")
        if e.get("resample", "none") not in RESAMPLE:
            raise GenotypeError(f"{p}.resample", f"must be one of down, up, none, got {e.get('resample')!r}")
        params = e.get("params", {})
        if not isinstance(params, dict):
            raise GenotypeError(f"{p}.params", "must be an object")
        _check_json_value(params, f"{p}.params")
        if "weight" in e and not _is_num(e["weight"]):
            raise GenotypeError(f"{p}.weight", f"must be a finite number, got {e['weight']!r}")
        ow = e.get("op_weights")
        if ow is not None:
            if not isinstance(ow, dict):
                raise GenotypeError(f"{p}.op_weights", "must be an object {op name: weight}")
            for k, v in ow.items():
                if k not in OPS:
                    raise GenotypeError(f"{p}.op_weights.{k}", "unknown op")
                if not _is_num(v):
                    raise GenotypeError(f"{p}.op_weights.{k}", f"must be a finite number, got {v!r}")
        spec = OPS[op]
        resample = e.get("resample", "none")
        try:
            delta = spec.level_delta(**params) if spec.kind != "cell" else RESAMPLE[resample]
        except (TypeError, ValueError) as exc:
            raise GenotypeError(f"{p}.params", f"bad parameters for {op}: {exc}") from None
        if spec.kind != "cell" and (delta > 0) - (delta < 0) != RESAMPLE[resample]:
            raise GenotypeError(f"{p}.resample", f"op {op} changes the level by {delta:+d}, so resample must be {['none', 'down', 'up'][(delta > 0) - (delta < 0)]!r}")
        if tgt["level"] - src["level"] != delta:
            raise GenotypeError(p, f"level mismatch: {e['source']} (level {src['level']}) -> {e['target']} (level {tgt['level']}) but {op} with resample {resample} changes the level by {delta:+d}")
        if spec.same_channels and resample == "none" and src["channels"] != tgt["channels"]:
            raise GenotypeError(p, f"channel mismatch: {op} keeps channels but {e['source']} has {src['channels']} and {e['target']} has {tgt['channels']}")
        has_out[e["source"]] = True
        has_in[e["target"]] = True
        pairs.append((e["source"], e["target"]))
    for i, n in enumerate(nodes):
        if n["kind"] != "input" and not has_in[n["id"]]:
            raise GenotypeError(f"nodes[{i}]", f"node {n['id']!r} has no input edge")
        if n["kind"] != "output" and not has_out[n["id"]]:
            raise GenotypeError(f"nodes[{i}]", f"node {n['id']!r} has no output edge")
    topological_order(list(by_id), pairs)
    return doc


def dumps(doc: dict) -> str:
    """Validate and serialise compactly (no spaces)."""
    return json.dumps(validate(doc), separators=(",", ":"), allow_nan=False)


def loads(text: str) -> dict:
    """Parse JSON text (never evaluates code) and validate it."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError("$", f"not valid JSON: {exc}") from None
    return validate(doc)


def dump(doc: dict, path: str | os.PathLike) -> None:
    """Validate and write ``doc`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    text = json.dumps(validate(doc), indent=1, allow_nan=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict:
    """Read and validate a genotype file."""
    return loads(Path(path).read_text(encoding="utf-8"))
