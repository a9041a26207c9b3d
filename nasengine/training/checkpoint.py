"""Checkpoints loadable with ``torch.load(weights_only=True)``, written atomically.

A run keeps one checkpoint file per stage in its checkpoint directory: ``<stage>.pt``, except
the default stage ``main``, whose file is ``checkpoint.pt`` (the name runs written before stages
existed use, so they still resume). ``checkpoint_exists()`` and ``latest_reporter_seq()`` look
at every stage: they are the one API the engine and the web app use to decide on resuming.

State dicts may hold tensors, numbers, strings, None, lists, tuples and dicts; RNG states
(torch, CUDA, numpy, python ``random``) are converted to tensors and plain types by
``capture_rng()`` and restored by ``restore_rng()``.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"
#: The stage of a single-loop run; its file is ``CHECKPOINT_NAME``.
DEFAULT_STAGE = "main"
#: Stage names become file names: no path separators, no leading dot (temp files have one).
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_stage_name(stage: str) -> str:
    """``stage`` if it is usable as a file name stem, else ``ValueError``."""
    if not isinstance(stage, str) or not _STAGE_NAME.fullmatch(stage) or stage.endswith(".pt"):
        raise ValueError(f"bad stage name {stage!r}: use letters, digits, '_', '-' and '.', "
                         "starting with a letter or digit")
    return stage


def stage_path(checkpoint_dir: str | os.PathLike[str], stage: str = DEFAULT_STAGE) -> Path:
    """The checkpoint file of ``stage``: ``checkpoint.pt`` for ``main``, else ``<stage>.pt``."""
    name = CHECKPOINT_NAME if check_stage_name(stage) == DEFAULT_STAGE else f"{stage}.pt"
    return Path(checkpoint_dir) / name


def stage_files(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """Every stage checkpoint file in ``checkpoint_dir`` (sorted; temp files left out)."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("*.pt") if p.is_file() and not p.name.startswith("."))


def clear_stages(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete every stage checkpoint in ``checkpoint_dir`` (a fresh start of the run, so that
    a later resume never mixes in an earlier run's stages); returns the files removed."""
    removed = stage_files(checkpoint_dir)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def checkpoint_exists(checkpoint_dir: str | os.PathLike[str]) -> bool:
    """True when any stage of the run has a checkpoint (the run can be resumed)."""
    return bool(stage_files(checkpoint_dir))


def latest_reporter_seq(checkpoint_dir: str | os.PathLike[str]) -> int | None:
    """The reporter ``seq`` of the newest checkpoint over all stages, or None.

    "Newest" is the largest stored ``seq``: stages run one after another on one event stream,
    so the stage checkpointed last holds the largest number. A resumed run rewinds to it.
    """
    seqs = [s for s in (peek_reporter_seq(p) for p in stage_files(checkpoint_dir))
            if s is not None]
    return max(seqs) if seqs else None


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


def latest(checkpoint_dir: str | os.PathLike[str], stage: str = DEFAULT_STAGE) -> Path | None:
    """The checkpoint file of ``stage`` in ``checkpoint_dir``, or None."""
    path = stage_path(checkpoint_dir, stage)
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
