"""Export of a discrete network: ``torch.export`` (.pt2) and ONNX; whatever works is kept."""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

PT2_FILE = "network.pt2"
ONNX_FILE = "network.onnx"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def export_torch(network: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]
                 ) -> dict[str, Any]:
    """``torch.export.export`` with a dynamic batch dimension (static batch if that fails)."""
    network = network.eval()
    if example.shape[0] == 1:  # a size-1 example would specialise the batch dimension
        example = example.expand(2, *example.shape[1:]).contiguous()
    try:
        batch = torch.export.Dim("batch", min=1, max=64)
        program = torch.export.export(network, (example,), dynamic_shapes=({0: batch},))
        dynamic = True
    except Exception:  # noqa: BLE001 - fall back to a static batch
        program = torch.export.export(network, (example,))
        dynamic = False
    torch.export.save(program, str(path))
    return {"file": Path(path).name, "dynamic_batch": dynamic,
            "input_shape": ["batch" if dynamic else example.shape[0], *example.shape[1:]]}


def export_onnx(network: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]
                ) -> dict[str, Any]:
    """ONNX via the dynamo exporter (``torch.onnx.export(..., dynamo=True)``)."""
    network = network.eval()
    if example.shape[0] == 1:
        example = example.expand(2, *example.shape[1:]).contiguous()
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.onnx.export(network, (example,), str(path), dynamo=True, input_names=["image"],
                      output_names=["logits"], dynamic_shapes=({0: batch},),
                      external_data=False, verbose=False)
    return {"file": Path(path).name, "input_shape": ["batch", *example.shape[1:]]}


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' chatter (missing torchvision ops, deprecations) on stderr."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_network(network: nn.Module, example: torch.Tensor, out_dir: str | os.PathLike[str],
                   *, formats: tuple[str, ...] = ("pt2", "onnx")) -> dict[str, Any]:
    """Try each format; returns ``{format: {"file": ...} | {"error": "..."}}``.

    ``example``: a [B,C,*patch] float tensor on CPU. Files that fail are not left behind.
    """
    out = Path(out_dir)
    results: dict[str, Any] = {}
    network = network.cpu().eval()
    example = example.cpu()
    for fmt, fn, name in (("pt2", export_torch, PT2_FILE), ("onnx", export_onnx, ONNX_FILE)):
        if fmt not in formats:
            continue
        target = out / name
        try:
            with torch.no_grad(), _quiet():
                results[fmt] = fn(network, example, target)
        except Exception as exc:  # noqa: BLE001 - export is best effort, recorded in bundle
            results[fmt] = {"error": _one_line(exc)}
            if target.exists():
                target.unlink()
    return results
