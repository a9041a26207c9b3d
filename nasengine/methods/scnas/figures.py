"""Derived figures of an SCNAS genotype: parameters, FLOPs and activation memory per sample.

Memory is exact for :class:`.network.SCNASNetwork` (tests measure it with saved-tensor hooks):
the ops' own saved bytes (``OpSpec.memory``, which excludes the op's input), plus each tensor
that some consumer saves as its input, counted once (storages shared by many readers are one
allocation). A node fed by a single identity edge is the same storage as its source.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ...genotype.format import GenotypeError
from ...ops import OPS
from .ops import OP_NAMES, SAVES_INPUT, SAVES_INPUT_STRIDED, STRIDED_OP_NAMES
from .network import SCNASNetwork, parse_genotype

__all__ = ["derive_figures", "saves_input", "discrete_activation_bytes"]

BYTES = 4

_SAVES = {OP_NAMES[p]: v for p, v in SAVES_INPUT.items()}
_SAVES.update({STRIDED_OP_NAMES[p]: v for p, v in SAVES_INPUT_STRIDED.items()})
_SAVES.update({"scnas_pre": True, "scnas_pre_down": True, "scnas_pre_up": True, "scnas_out": True,
               "scnas_stem": False})  # the stem's own memory already holds the image


def saves_input(op: str) -> bool:
    """Whether the module of registered op ``op`` keeps its input tensor for backward."""
    return _SAVES.get(op, True)


def _shape_after(op: str, shape: tuple[int, ...], params: dict) -> tuple[int, ...]:
    return OPS[op].out_shape(shape, **params)


def _walk(doc: dict[str, Any], patch: Sequence[int]) -> tuple[int, int]:
    """(memory bytes, FLOPs) per sample."""
    m = parse_genotype(doc)
    saved: dict[int, int] = {}  # tensor id -> bytes, for tensors some consumer saves
    size: dict[int, int] = {}
    counter = [0]

    def new_tensor(channels: int, shape: tuple[int, ...]) -> int:
        counter[0] += 1
        size[counter[0]] = channels * math.prod(shape) * BYTES
        return counter[0]

    def consume(op: str, tensor: int) -> None:
        if saves_input(op):
            saved[tensor] = size[tensor]

    memory = flops = 0
    tensor_of: dict[int, int] = {}
    shape_of: dict[int, tuple[int, ...]] = {}
    for i in range(len(m.ids)):
        if m.kinds[i] == "input":
            shape_of[i] = tuple(int(s) for s in patch)
            tensor_of[i] = new_tensor(m.widths[i], shape_of[i])
            continue
        cell = m.cells[m.cell_of[i]] if m.cell_of[i] else None
        inputs: list[tuple[int, tuple[int, ...]] | None] = []
        single = None
        for slot, (k, s) in enumerate(m.incoming[i]):
            e = m.edges[k]
            if cell is not None and not cell.used_inputs[slot]:
                inputs.append(None)
                continue
            params = e.get("params") or {}
            c_out = m.channels[i] if cell is not None else m.widths[i]
            spec = OPS[e["op"]]
            memory += spec.memory(m.widths[s], c_out, shape_of[s], **params)
            flops += spec.flops(m.widths[s], c_out, shape_of[s], **params)
            consume(e["op"], tensor_of[s])
            out_shape = _shape_after(e["op"], shape_of[s], params)
            inputs.append((new_tensor(c_out, out_shape), out_shape))
            single = (e["op"], s) if len(m.incoming[i]) == 1 else None
        if cell is None:
            shape_of[i] = next(x for x in inputs if x is not None)[1]
            if single is not None and single[0] == "skip":
                tensor_of[i] = tensor_of[single[1]]  # identity: the same storage
            else:
                tensor_of[i] = new_tensor(m.widths[i], shape_of[i])
            continue
        c = m.channels[i]
        states: list[tuple[int, tuple[int, ...]] | None] = list(inputs)
        for node in range(len(cell.used_inputs), len(cell.node_ids)):
            into = [(s, op) for s, t, op in cell.edges if t == node]
            shape = None
            for s, op in into:
                tid, sh = states[s]
                memory += OPS[op].memory(c, c, sh)
                flops += OPS[op].flops(c, c, sh)
                consume(op, tid)
                shape = _shape_after(op, sh, {})
            if len(into) == 1 and into[0][1] == "skip":
                states.append(states[into[0][0]])
            else:
                states.append((new_tensor(c, shape), shape))
        shape_of[i] = states[cell.concat[0]][1]
        tensor_of[i] = new_tensor(m.widths[i], shape_of[i])
    return memory + sum(saved.values()), flops


def discrete_activation_bytes(doc: dict[str, Any], patch: Sequence[int]) -> int:
    """Bytes autograd saves per sample in one forward of the genotype's network."""
    return _walk(doc, patch)[0]


def derive_figures(doc: dict[str, Any], patch_size: Sequence[int]) -> dict[str, Any]:
    """``{"parameters", "flops", "memory_bytes", "patch_size"}`` per sample (the ``derived``
    field of the genotype)."""
    patch = [int(s) for s in patch_size]
    div = 2 ** int((doc.get("meta") or {}).get("depth", 0))
    if any(s % div for s in patch):
        raise GenotypeError("derived.patch_size", f"patch {patch} must be divisible by {div}")
    memory, flops = _walk(doc, patch)
    with torch.device("meta"):
        net = SCNASNetwork(doc)
    parameters = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return {"parameters": int(parameters), "flops": int(flops), "memory_bytes": int(memory), "patch_size": patch}
