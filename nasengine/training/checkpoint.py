"""Checkpoints loadable with ``torch.load(weights_only=True)``, written atomically.

State dicts may hold tensors, numbers, strings, None, lists, tuples and dicts; RNG states
(torch, CUDA, numpy, python ``random``) are converted to tensors and plain types by
``capture_rng()`` and restored by ``restore_rng()``.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"


def save(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
         ) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no pickled code runs)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def latest(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    """The run's checkpoint file in ``checkpoint_dir``, or None."""
    path = Path(checkpoint_dir) / CHECKPOINT_NAME
    return path if path.exists() else None


def capture_rng() -> dict[str, Any]:
    """All RNG states as tensors and plain types."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_state[0]),
                  "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss_next": py_gauss},
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng()``."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def peek_reporter_seq(path: str | os.PathLike[str]) -> int | None:
    """The reporter ``seq`` stored in a checkpoint, read lazily (mmap), or None."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a torn file: the loop reports it properly
        return None
    seq = state.get("reporter_seq") if isinstance(state, dict) else None
    return int(seq) if seq is not None else None
