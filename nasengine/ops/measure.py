"""Measure what autograd really saves, to check the op memory estimates."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

__all__ = ["saved_activation_bytes"]


def saved_activation_bytes(fn: Callable[[], torch.Tensor], exclude: nn.Module | None = None) -> int:
    """Bytes of tensors autograd saves for backward while ``fn()`` runs.

    Storages are counted once however many saved tensors view them; parameters of ``exclude``
    (usually the module under test) are not activations and are left out.

    Returns:
        total bytes over the whole batch (divide by the batch size for per-sample figures).
    """
    params = set()
    if exclude is not None:
        params = {p.untyped_storage().data_ptr() for p in exclude.parameters()}
    storages: dict[int, int] = {}
    keep: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in params:
            storages[ptr] = st.nbytes()
        keep.append(t)  # keep storages alive so a pointer is never reused during the run
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    keep.clear()  # release the saved tensors (the closure still names the list)
    return sum(storages.values())
