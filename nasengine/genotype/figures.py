"""Derived figures of a genotype at a patch size: parameters, FLOPs, activation memory."""

from __future__ import annotations

from typing import Sequence

import torch

from ..ops import OPS
from .format import GenotypeError, validate

__all__ = ["derive_figures", "edge_costs"]


def edge_costs(edge: dict, c_in: int, c_out: int, in_shape: Sequence[int]) -> tuple[int, int]:
    """``(memory_bytes, flops)`` per sample of one edge whose source has spatial ``in_shape``."""
    spec = OPS[edge["op"]]
    params = edge.get("params", {}) or {}
    resample = edge.get("resample", "none")
    if spec.kind == "cell" and resample != "none":
        rs = OPS[resample]
        mid = rs.out_shape(in_shape)
        return (
            rs.memory(c_in, c_out, in_shape) + spec.memory(c_out, c_out, mid, **params),
            rs.flops(c_in, c_out, in_shape) + spec.flops(c_out, c_out, mid, **params),
        )
    return spec.memory(c_in, c_out, in_shape, **params), spec.flops(c_in, c_out, in_shape, **params)


def derive_figures(doc: dict, patch_size: Sequence[int]) -> dict:
    """Parameters, FLOPs and memory of the network of ``doc`` for one ``patch_size`` sample.

    - ``parameters``: trainable parameters (counted on the meta device: nothing is allocated).
    - ``flops``: 2 per multiply-accumulate of every convolution, per sample.
    - ``memory_bytes``: activation bytes held for backward per sample (sum of the op estimates
      of :mod:`nasengine.ops`; multiply by the batch size for a batch).

    Returns:
        ``{"parameters", "flops", "memory_bytes", "patch_size"}``, the genotype's ``derived`` field.
    """
    validate(doc)
    patch = [int(s) for s in patch_size]
    by_id = {n["id"]: n for n in doc["nodes"]}
    max_level = max(n["level"] for n in doc["nodes"])
    if any(s % (2**max_level) for s in patch):
        raise GenotypeError("derived.patch_size", f"patch {patch} must be divisible by {2**max_level} (levels up to {max_level})")
    memory = flops = 0
    for e in doc["edges"]:
        src, tgt = by_id[e["source"]], by_id[e["target"]]
        shape = [s // 2 ** src["level"] for s in patch]
        m, f = edge_costs(e, src["channels"], tgt["channels"], shape)
        memory += m
        flops += f
    if doc.get("continuous", False):
        parameters = None
    else:
        from .builder import GenotypeNetwork

        with torch.device("meta"):
            net = GenotypeNetwork(doc)
        parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return {"parameters": parameters, "flops": int(flops), "memory_bytes": int(memory), "patch_size": patch}
