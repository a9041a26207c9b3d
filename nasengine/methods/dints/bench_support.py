"""Helpers for ``bench/dints_vs_monai.py``: our supernet at a MONAI configuration, and the
retrain-memory check (estimate vs bytes autograd saves)."""

from __future__ import annotations

import torch

from ...genotype import build_network, derive_figures
from ...lattice.space import get_space
from ...ops import saved_activation_bytes
from .memory import op_cost_table
from .model_search import DiNTSSupernet

__all__ = ["build_reference_supernet", "retrain_memory_check", "stem_filters_for"]


def stem_filters_for(channel_mul: float) -> int:
    """MONAI's ``filter_nums[0] = int(32 * channel_mul)`` is our full-resolution ``stem_filters``."""
    return max(1, int(32 * channel_mul))


def build_reference_supernet(*, channel_mul: float, blocks: int, depths: int, in_channels: int,
                             out_channels: int, patch: int, sigma: float = 0.8,
                             retrain_multiplier: float = 2.0, recompute: str = "front",
                             checkpoint_layers: bool = False) -> DiNTSSupernet:
    """Our supernet with MONAI's ``TopologySearch(channel_mul, blocks, depths)`` channels, with
    the memory loss on (op costs at the retrain channels and ``patch``); ``recompute`` and
    ``checkpoint_layers`` as in :class:`DiNTSSupernet`."""
    f = stem_filters_for(channel_mul)
    fr = max(1, int(round(f * retrain_multiplier)))
    op_costs, edge_costs = op_cost_table(get_space(depths), fr, [patch] * 3)
    return DiNTSSupernet(
        in_channels, out_channels, blocks, depths, f,
        op_costs=op_costs, edge_costs=edge_costs,
        sigma=sigma, genotype_stem_filters=fr, recompute=recompute, checkpoint_layers=checkpoint_layers,
    )


def retrain_memory_check(*, channel_mul: float, blocks: int, depths: int, in_channels: int,
                         out_channels: int, patch: int, seed: int = 0, batch: int = 1) -> dict:
    """Decode a supernet (seeded random architecture weights), build the retrain network and
    compare ``derive_figures(...)["memory_bytes"]`` (the retrain estimate of that network, per
    sample) with the bytes its forward saves for backward (saved-tensor hooks), fp32, CPU."""
    torch.manual_seed(seed)
    with torch.device("meta"):
        net = build_reference_supernet(channel_mul=channel_mul, blocks=blocks, depths=depths,
                                       in_channels=in_channels, out_channels=out_channels, patch=patch)
    g = torch.Generator().manual_seed(seed)
    net.edge_logits = torch.nn.Parameter(torch.randn(net.edge_logits.shape, generator=g))
    net.op_logits = torch.nn.Parameter(torch.randn(net.op_logits.shape, generator=g))
    doc = net.decode()
    fig = derive_figures(doc, [patch] * 3)
    model = build_network(doc)
    x = torch.randn(batch, in_channels, patch, patch, patch, generator=g)
    saved = saved_activation_bytes(lambda: model(x), exclude=model) / batch
    return {"estimate_bytes": int(fig["memory_bytes"]), "saved_bytes": int(saved),
            "parameters": int(fig["parameters"]), "flops": int(fig["flops"]),
            "cell_edges": int(sum(1 for e in doc["edges"] if e["source"].startswith("n") and e["target"].startswith("n")))}
