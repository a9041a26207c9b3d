"""Explanation maps of a model bundle beside its segmentation (DAST's attention maps).

A method may offer two duck-typed hooks (``nasengine.methods.dast`` does):
``attention_sites(genotype) -> [{"id", "source", "target", "layer", "level"}, ...]`` and
``write_attention_maps(bundle, input_path, out_dir, which=..., device=...) -> [entry, ...]``.
A bundle whose method has no such hook, or whose genotype has no such site, gets nothing and
nothing is computed.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from nasengine.inference.bundle import ModelBundle, read_bundle

__all__ = ["attention_sites", "write_attention_maps"]


def _method(bundle: ModelBundle):
    from nasengine.methods import registry

    return registry.get(bundle.method)


def attention_sites(bundle_dir: str | os.PathLike[str] | ModelBundle) -> list[dict[str, Any]]:
    """The ops of the bundle's network that have attention maps (empty for most methods)."""
    bundle = bundle_dir if isinstance(bundle_dir, ModelBundle) else read_bundle(bundle_dir)
    hook = getattr(_method(bundle), "attention_sites", None)
    return list(hook(bundle.genotype)) if callable(hook) else []


def write_attention_maps(bundle_dir: str | os.PathLike[str] | ModelBundle, input_path: str | os.PathLike[str],
                         out_dir: str | os.PathLike[str], *, which: Iterable[str] | None = None,
                         device: torch.device | str | None = None) -> list[dict[str, Any]]:
    """Write the attention maps of ``which`` sites (None or empty: all) of the bundle's network
    for ``input_path`` into ``out_dir``, as float32 NIfTI in the input's shape and affine.

    Returns one entry per map (the site, ``file``, ``min``, ``max``, ``mean``); an empty list,
    with nothing computed and nothing written, when the model has no attention sites.
    """
    bundle = bundle_dir if isinstance(bundle_dir, ModelBundle) else read_bundle(bundle_dir)
    method = _method(bundle)
    if not attention_sites(bundle):
        return []
    wanted = list(which or []) or None
    return list(method.write_attention_maps(bundle, Path(input_path), Path(out_dir), which=wanted, device=device))
