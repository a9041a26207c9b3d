"""The expensive part of the contract suite: demo data, searches and retrains, each run once per
method and shared by every test that needs it (``ContractRuns``, a session fixture).

Runs go through the public engine API (``nasengine.api``) on CPU: the resume contract is
bitwise on CPU, where kernels are deterministic (CUDA kernels need not be).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

from nasengine import api
from nasengine.events import CallableCancelToken, Cancelled
from nasengine.events.sinks import read_events

#: Small demo data: the tiny presets search and retrain on it in seconds on one CPU core.
DEMO_CASES = 4
DEMO_SHAPE = (32, 32, 32)
DEVICE = "cpu"
RETRAIN_PRESET = "tiny"
SEARCH_PRESET = "tiny"


@dataclasses.dataclass
class RunResult:
    """One finished run: its output folder, the genotype (search) or bundle folder (retrain),
    and how many times the engine asked the cancel token (to cancel a second run halfway)."""

    out_dir: Path
    genotype: dict[str, Any] | None
    cancel_checks: int

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / api.CHECKPOINT_DIR

    def step_series(self) -> list[tuple[Any, Any, Any, Any]]:
        """``(stage, candidate, step, losses)`` of every step event, in order."""
        return [(e.get("stage"), e.get("candidate"), e.get("step"), e.get("losses"))
                for e in read_events(self.out_dir / api.EVENTS_FILE) if e["type"] == "step"]


class _CountingCancel:
    """A cancel callable: counts the engine's checks and says "cancel" from check ``at`` on."""

    def __init__(self, at: int | None = None):
        self.at, self.checks = at, 0

    def __call__(self) -> bool:
        self.checks += 1
        return self.at is not None and self.checks >= self.at


def halfway(checks: int) -> int:
    """The check at which an interrupted run cancels: mid-run, never the first or last."""
    assert checks >= 3, f"the engine asked the cancel token only {checks} times: too few to " \
                        "cancel mid-run (it must ask between steps)"
    return max(2, math.ceil(checks / 2))


class ContractRuns:
    """Memoised runs per method, under ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self._demo: Path | None = None
        self._cache: dict[tuple[str, str], Any] = {}

    def demo_data(self) -> Path:
        """The demo dataset (MSD layout), written once."""
        if self._demo is None:
            self._demo = api.make_demo_data(self.root / "demo", n_cases=DEMO_CASES,
                                            shape=DEMO_SHAPE)
        return self._demo

    def memo(self, key: tuple[str, str], make):
        """``make()`` the first time ``key`` (method, what) is asked for, then the same value."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # ---- search ------------------------------------------------------------------------
    def search(self, method: str) -> RunResult:
        """The tiny preset searched on the demo data, uninterrupted."""
        def run() -> RunResult:
            counter = _CountingCancel()
            out = self.root / method / "search"
            genotype = api.search(method, self.demo_data(), out, preset=SEARCH_PRESET,
                                  cancel=CallableCancelToken(counter), device=DEVICE)
            return RunResult(out, genotype, counter.checks)
        return self.memo((method, "search"), run)

    def resumed_search(self, method: str) -> RunResult:
        """The same search cancelled halfway, then resumed from its checkpoints."""
        def run() -> RunResult:
            reference = self.search(method)
            out = self.root / method / "search-resumed"
            counter = _CountingCancel(at=halfway(reference.cancel_checks))
            try:
                api.search(method, self.demo_data(), out, preset=SEARCH_PRESET,
                           cancel=CallableCancelToken(counter), device=DEVICE)
            except Cancelled:
                pass
            else:
                raise AssertionError(f"{method}: search was not cancelled at check "
                                     f"{counter.at} of {reference.cancel_checks}")
            genotype = api.search(method, self.demo_data(), out, preset=SEARCH_PRESET,
                                  resume=True, device=DEVICE)
            return RunResult(out, genotype, counter.checks)
        return self.memo((method, "search-resumed"), run)

    # ---- retrain -----------------------------------------------------------------------
    def retrain_overrides(self, method: str) -> dict[str, Any]:
        """Skip the export when the retrain config has the switch (the network contract
        exports on its own; two exports per retrain would double the suite's time)."""
        schema = api.retrain_schema(method)
        return {"export": False} if "export" in schema.get("properties", {}) else {}

    def retrain(self, method: str) -> RunResult:
        """The searched genotype retrained with the method's tiny retrain preset."""
        def run() -> RunResult:
            counter = _CountingCancel()
            out = self.root / method / "retrain"
            api.retrain(self.search(method).genotype, self.demo_data(), out,
                        preset=RETRAIN_PRESET, overrides=self.retrain_overrides(method),
                        cancel=CallableCancelToken(counter), device=DEVICE)
            return RunResult(out, None, counter.checks)
        return self.memo((method, "retrain"), run)

    def resumed_retrain(self, method: str) -> RunResult:
        """The same retraining cancelled halfway, then resumed."""
        def run() -> RunResult:
            reference = self.retrain(method)
            genotype = self.search(method).genotype
            out = self.root / method / "retrain-resumed"
            counter = _CountingCancel(at=halfway(reference.cancel_checks))
            overrides = self.retrain_overrides(method)
            try:
                api.retrain(genotype, self.demo_data(), out, preset=RETRAIN_PRESET,
                            overrides=overrides, cancel=CallableCancelToken(counter),
                            device=DEVICE)
            except Cancelled:
                pass
            else:
                raise AssertionError(f"{method}: retraining was not cancelled at check "
                                     f"{counter.at} of {reference.cancel_checks}")
            api.retrain(genotype, self.demo_data(), out, preset=RETRAIN_PRESET,
                        overrides=overrides, resume=True, device=DEVICE)
            return RunResult(out, None, counter.checks)
        return self.memo((method, "retrain-resumed"), run)


def load_state(path: Path) -> Any:
    """A checkpoint or weights file, loaded the way the engine loads them."""
    return torch.load(path, map_location="cpu", weights_only=True)


#: Checkpoint entries that may differ after a resume: the event numbering (a cancelled run
#: emitted one checkpoint event more before resuming).
VOLATILE_KEYS = frozenset({"reporter_seq"})


def _raw_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes (bitwise comparison: NaN equals the same NaN, -0.0 differs from 0.0)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)


def state_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two checkpoint states differ (tensors compared bitwise: dtype, shape, bytes)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return [f"{path}: tensor vs {type(b if isinstance(a, torch.Tensor) else a).__name__}"]
        if a.dtype != b.dtype or a.shape != b.shape:
            return [f"{path}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"]
        return [] if torch.equal(_raw_bytes(a), _raw_bytes(b)) else [f"{path}: tensors differ"]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(map(str, set(a) ^ set(b)))} in only one"]
        out: list[str] = []
        for key in a:
            if key in VOLATILE_KEYS:
                continue
            out += state_differences(a[key], b[key], f"{path}.{key}" if path else str(key))
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} vs {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += state_differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]
