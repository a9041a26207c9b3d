"""Device selection: CUDA when available, else CPU; never hard-coded.

`VOXELSEARCH_DEVICE` (e.g. ``cpu``, ``cuda``, ``cuda:1``) overrides the choice, so a worker
or a test can pin a device without code changes.
"""
from __future__ import annotations

import os

import torch

ENV_VAR = "VOXELSEARCH_DEVICE"


def select_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Order: ``preferred`` argument, then the ``VOXELSEARCH_DEVICE`` environment variable, then
    ``cuda`` if ``torch.cuda.is_available()``, else ``cpu``. Asking for CUDA on a machine without
    it raises ``RuntimeError`` with a one-line explanation.
    """
    choice = preferred if preferred is not None else os.environ.get(ENV_VAR, "").strip() or None
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError) as exc:
        raise RuntimeError(f"{ENV_VAR}: not a device name: {choice!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{ENV_VAR}: asked for {choice!r} but CUDA is not available here")
    return device


def describe_device(device: torch.device) -> str:
    """Human-readable device name, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of a CUDA device in bytes, or None for CPU."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return int(torch.cuda.get_device_properties(index).total_memory)
