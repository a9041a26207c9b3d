"""A run's curves for overlaying: validation mean Dice and the segmentation loss per step, and
the peak memory the worker reported, read from the run's stored events.

The x axis is the run's step. A method that trains stages or candidates one after another
(C2FNAS) counts steps from 1 in each; as on the run page (frontend/static/js/runs/series.js,
``StepAxis``), a stage/candidate first seen starts where the run so far ended, so x only grows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from webapp.runs.models import Run, RunEvent

#: At most this many points per curve reach the browser (every n-th step, the last kept).
MAX_POINTS = 400


@dataclass
class RunCurves:
    dice: list[tuple[float, float]] = field(default_factory=list)
    loss: list[tuple[float, float]] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    memory_kind: str = ""
    #: The last validation's per-class Dice and mean (what a run without a model is scored by).
    last_validation: dict[str, float | None] = field(default_factory=dict)
    last_validation_mean: float | None = None


class _StepAxis:
    def __init__(self):
        self.offsets: dict[str, float] = {}
        self.end = 0.0

    def x(self, payload: dict) -> float | None:
        step = payload.get("step")
        if not isinstance(step, (int, float)):
            return None
        stage = f"{payload.get('stage') or ''}/{payload.get('candidate') or ''}" if payload.get("stage") or payload.get("candidate") else ""
        if stage not in self.offsets:
            self.offsets[stage] = 0.0 if stage == "" else self.end
        x = self.offsets[stage] + float(step)
        self.end = max(self.end, x)
        return x


def thin(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Every n-th point so that at most ``limit`` remain; the last point is always kept."""
    if len(points) <= limit:
        return points
    stride = -(-len(points) // (limit - 1))
    kept = points[::stride]
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else None


def run_curves(run: Run) -> RunCurves:
    """The run's curves from its ``step`` and ``validation`` events."""
    curves = RunCurves()
    axis = _StepAxis()
    rows = RunEvent.objects.filter(run=run, type__in=("step", "validation")).order_by("seq").values_list("type", "payload")
    for kind, payload in rows.iterator(chunk_size=2000):
        x = axis.x(payload)
        if kind == "validation":
            mean = _number(payload.get("mean_dice"))
            if x is not None and mean is not None:
                curves.dice.append((x, mean))
            dice = payload.get("dice")
            if isinstance(dice, dict):
                curves.last_validation = {str(k): _number(v) for k, v in dice.items()}
                curves.last_validation_mean = mean
            continue
        loss = _number((payload.get("losses") or {}).get("seg")) if isinstance(payload.get("losses"), dict) else None
        if x is not None and loss is not None:
            curves.loss.append((x, loss))
        memory = payload.get("memory_bytes")
        if isinstance(memory, (int, float)) and (curves.peak_memory_bytes is None or memory > curves.peak_memory_bytes):
            curves.peak_memory_bytes = int(memory)
            curves.memory_kind = str(payload.get("memory_kind") or "")
    curves.loss = thin(curves.loss)
    curves.dice = thin(curves.dice)
    return curves
