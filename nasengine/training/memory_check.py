"""Measured activation memory of one forward pass, for the memory-estimate contract.

``MemoryEstimate.details["search_activation_bytes"]`` / ``["retrain_activation_bytes"]``
must agree (within ±10%) with what autograd really saves; the contract suite measures it here,
on CPU, with saved-tensor hooks (``nasengine.ops.saved_activation_bytes``).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nasengine.ops import saved_activation_bytes

__all__ = ["measure_saved_bytes"]


def measure_saved_bytes(network: nn.Module, batch: torch.Tensor | Mapping[str, torch.Tensor]
                        ) -> int:
    """Bytes autograd saves for backward in one training-mode forward of ``network``.

    Args:
        network: any module; its parameters are not counted (they are not activations).
        batch: the input ``[B, C, X, Y, Z]``, or a loader batch ``{"image": ..., ...}``.

    Returns:
        total bytes over the whole batch (storages counted once).
    """
    image = batch["image"] if isinstance(batch, Mapping) else batch
    was_training = network.training
    network.train()
    try:
        with torch.enable_grad():
            return int(saved_activation_bytes(lambda: network(image), exclude=network))
    finally:
        network.train(was_training)
