"""Run events: stored first (the source of truth), then sent to the run's Channels group.

Group ``run-<id>`` gets ``{"type": "run.event", "event": {...}}`` for each engine event,
``{"type": "run.rewind", "seq": N}`` when a resumed run drops events after ``N``, and
``{"type": "run.status", "run": {...}}`` when the status changes.

Events of every type are stored and sent alike: the core types (``step``, ``architecture`` ...)
and a method's namespaced ones (``scnas.sampled_ops``), with whatever they carry (``stage``,
``candidate``, ``progress``, ``metrics`` ...). An event too big for a channel-layer message
(an architecture snapshot of a large search space) is sent as a stub ``{"seq", "type",
"time", "layer_stub": true}``; the consumer reads the whole event from the database.
"""
from __future__ import annotations

import json
import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from .models import Run, RunEvent

log = logging.getLogger(__name__)

#: Largest event (JSON bytes) sent whole through the channel layer; channels-redis and the
#: ASGI spec expect messages well under 1 MB, and one run may send many per second.
MAX_LAYER_EVENT_BYTES = 64 * 1024


def group_name(run_id: int) -> str:
    return f"run-{run_id}"


class LostClaim(Exception):
    """Another worker has taken this run over: stop without touching it."""


class EventStreamRewound(RuntimeError):
    """The engine asked to drop stored events outside a resume (a run keeps its history)."""


def _send(run_id: int, message: dict) -> None:
    """Never fails the caller: the browser replays stored events after a reconnect."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(run_id), message)
    except Exception:
        log.warning("Could not send a message of run %s to the channel layer", run_id, exc_info=True)


def layer_event(event: dict) -> dict:
    """The event as sent through the channel layer: whole, or a stub when it is too big."""
    if len(json.dumps(event, separators=(",", ":"))) <= MAX_LAYER_EVENT_BYTES:
        return event
    return {"seq": event["seq"], "type": event["type"], "time": event.get("time"), "layer_stub": True}


def status_payload(run: Run) -> dict:
    model = getattr(run, "trained_model", None) if run.kind == Run.Kind.RETRAIN else None
    return {
        "id": run.pk, "status": run.status, "error": run.error, "best_mean_dice": run.best_mean_dice,
        "cancel_requested": run.cancel_requested, "attempts": run.attempts,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "model_id": model.pk if model is not None else None,
        "progress": run.progress or {},
    }


def run_changed(run: Run) -> None:
    _send(run.pk, {"type": "run.status", "run": status_payload(run)})


# ----------------------------------------------------------------------------- progress

def _fraction(event: dict, step: int | None, total: int | None) -> float | None:
    """Overall progress 0..1: the event's own ``progress`` (a method that chains stages knows
    it), else step / total_steps of the (only) stage."""
    value = event.get("progress")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return min(1.0, max(0.0, float(value)))
    if step is not None and total:
        return min(1.0, max(0.0, step / total))
    return None


def next_progress(previous: dict, event: dict) -> dict | None:
    """The run's ``progress`` after ``event``, or None when the event says nothing about it.

    Keys: ``step``, ``total_steps``, ``phase``, ``stage``, ``candidate`` (as the latest step
    event gave them), ``fraction`` (overall, 0..1) and ``eta_seconds`` (from the rate since
    ``eta_basis``, the time and fraction of this attempt's or stage's first ``run_started``).
    """
    kind = event["type"]
    if kind not in ("step", "run_started"):
        return None
    if not event.get("total_steps") and event.get("progress") is None:
        return None
    step = event.get("step")
    if step is None:  # a resumed attempt's run_started says where it resumed
        step = previous.get("step") if kind == "step" else event.get("resumed_from_step")
    step = int(step or 0)
    total = int(event["total_steps"]) if event.get("total_steps") else previous.get("total_steps")
    fraction = _fraction(event, step, total)
    now = float(event.get("time") or time.time())
    basis = previous.get("eta_basis")
    if kind == "run_started" or not basis:
        basis = {"time": now, "fraction": fraction or 0.0}
    eta = None
    if fraction is not None and fraction > basis["fraction"] and now > basis["time"]:
        rate = (fraction - basis["fraction"]) / (now - basis["time"])
        eta = round((1.0 - fraction) / rate, 1)
    return {
        "step": step, "total_steps": total,
        "phase": event.get("phase") or previous.get("phase"),
        "stage": event.get("stage", previous.get("stage")),
        "candidate": event.get("candidate", previous.get("candidate")),
        "fraction": fraction, "eta_seconds": eta, "eta_basis": basis,
    }


def _apply(run: Run, event: dict) -> list[str]:
    """Update the run's summary fields from one event; returns the fields changed."""
    fields: list[str] = []
    progress = next_progress(run.progress or {}, event)
    if progress is not None:
        run.progress = progress
        fields.append("progress")
    if event["type"] == "validation" and event.get("mean_dice") is not None:
        mean = float(event["mean_dice"])
        if run.best_mean_dice is None or mean > run.best_mean_dice:
            run.best_mean_dice = mean
            fields.append("best_mean_dice")
    return fields


# ----------------------------------------------------------------------------- the sink

class RunEventSink:
    """Reporter sink of a task: stores each event under the run's claim, then broadcasts it.

    ``may_rewind``: this attempt resumes (or restarts) the run, so one rewind before its first
    event may drop stored events after the given seq. Any other rewind that would drop stored
    events raises :class:`EventStreamRewound`: a fresh run never deletes its history.
    """

    def __init__(self, run_id: int, claim_token: str, *, may_rewind: bool = False):
        self.run_id = run_id
        self.claim_token = claim_token
        self.may_rewind = may_rewind
        self.emitted = 0

    def __call__(self, event: dict) -> None:
        payload = {k: v for k, v in event.items() if k not in ("seq", "type", "time")}
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=self.run_id).first()
            if run is None or run.claim_token != self.claim_token:
                raise LostClaim(f"run {self.run_id} is no longer held by this worker")
            RunEvent.objects.create(run_id=self.run_id, seq=event["seq"], type=event["type"],
                                    time=float(event.get("time") or time.time()), payload=payload)
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["heartbeat_at", *_apply(run, event)])
        self.emitted += 1
        _send(self.run_id, {"type": "run.event", "event": layer_event(event)})

    def rewind(self, seq: int) -> None:
        """Continue after ``seq``: drop the stored events a resumed run will emit again."""
        later = RunEvent.objects.filter(run_id=self.run_id, seq__gt=seq)
        if not later.exists():
            return  # nothing to drop (a fresh start at 0, or a resume at the newest event)
        if not self.may_rewind or self.emitted:
            raise EventStreamRewound(
                f"run {self.run_id}: the engine rewound its event stream to {seq} outside a resume; "
                "stored events are kept (a run's loops must not rewind)"
            )
        self.may_rewind = False
        deleted, _ = later.delete()
        log.info("Run %s resumes after event %s: dropped %s later events", self.run_id, seq, deleted)
        _send(self.run_id, {"type": "run.rewind", "seq": int(seq)})


# ------------------------------------------------------------------ compact snapshots

class SnapshotEncoder:
    """Sends ``architecture`` events of one stream as changes against the previous one.

    A search snapshots its architecture every few steps (7 KB each for DiNTS at the paper's
    size), and consecutive snapshots differ in a few weights, so a page that replays 1,000
    steps would download mostly repeats. The first ``architecture`` event of a stream (a
    response of the events API, a socket's replay and live messages) goes whole; each later
    one carries ``genotype_patch`` (see :func:`genotype_patch`) against the genotype of
    ``genotype_base`` (the seq of the previous ``architecture`` event of the run, which the page
    has, since it receives every event in order) instead of ``genotype``, when that is smaller.
    The dashboard rebuilds the genotype (``frontend/static/js/runs/snapshots.js``); events are
    stored whole, so nothing else changes.
    """

    def __init__(self) -> None:
        self.last: tuple[int, dict] | None = None

    def reset(self) -> None:
        """After a rewind: the next snapshot goes whole (its base may have been dropped)."""
        self.last = None

    def encode(self, event: dict) -> dict:
        if event.get("type") != "architecture" or not isinstance(event.get("genotype"), dict):
            return event
        genotype = event["genotype"]
        previous, self.last = self.last, (event["seq"], genotype)
        if previous is None:
            return event
        patch = genotype_patch(previous[1], genotype)
        if len(_compact_json(patch)) >= len(_compact_json(genotype)):
            return event
        out = {k: v for k, v in event.items() if k != "genotype"}
        out["genotype_patch"] = patch
        out["genotype_base"] = previous[0]
        return out


def _compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _numbers(doc, out: list) -> object:
    """The numbers of ``doc`` in a fixed order (depth first, object keys sorted) appended to
    ``out``; returns the document's shape (the numbers replaced by None) for comparing."""
    if isinstance(doc, bool) or doc is None or isinstance(doc, str):
        return doc
    if isinstance(doc, (int, float)):
        out.append(doc)
        return None
    if isinstance(doc, dict):
        return {key: _numbers(doc[key], out) for key in sorted(doc)}
    return [_numbers(item, out) for item in doc]


def _number_steps(old, new) -> list[int] | None:
    """When ``new`` is ``old`` with only its numbers moved (a search's weights between two
    snapshots), each number's move in 1e-4 steps (0: unchanged, kept as it was); else None."""
    a, b = [], []
    if _numbers(old, a) != _numbers(new, b):
        return None
    steps = []
    for x, y in zip(a, b):
        if type(x) is type(y) and x == y:
            steps.append(0)
            continue
        step = _number_step(x, y)
        if step is None or step == 0:
            return None
        steps.append(step)
    return steps


def genotype_patch(old, new):
    """The smaller of the two patch forms: ``{"#": [n, ...]}`` when only numbers moved (one
    move per number, in the order of ``_numbers``), else the tree patch of ``_tree_patch``."""
    steps = _number_steps(old, new)
    tree = _tree_patch(old, new)
    if steps is not None and len(_compact_json(steps)) <= len(_compact_json(tree)):
        return {"#": steps}
    return tree


def _tree_patch(old, new):
    """A JSON patch that turns ``old`` into ``new``. Nodes: ``{"=": value}`` (replace),
    ``{"+": n}`` (a float on the 1e-4 grid moves by ``n`` steps of 1e-4: see ``_number_step``),
    ``{"-": 1}`` (delete this key), ``{"{}": {key: node}}`` (change these keys of an object),
    ``{"[]": {"index": node}}`` (change these items of a list of the same length). Unchanged
    parts are left out; equal documents give ``{"{}": {}}``."""
    node = _diff(old, new)
    return {"{}": {}} if node is None else node


def _diff(old, new):
    if type(old) is type(new) and old == new:
        return None
    if isinstance(old, dict) and isinstance(new, dict):
        changes = {}
        for key, value in new.items():
            if key not in old:
                changes[key] = {"=": value}
            else:
                node = _diff(old[key], value)
                if node is not None:
                    changes[key] = node
        for key in old:
            if key not in new:
                changes[key] = {"-": 1}
        return {"{}": changes}
    step = _number_step(old, new)
    if step is not None:
        return {"+": step}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = {}
        for index, (a, b) in enumerate(zip(old, new)):
            node = _diff(a, b)
            if node is not None:
                changes[str(index)] = node
        return {"[]": changes}
    return {"=": new}


#: Snapshot weights are rounded to 4 decimals by the engine (``compact_genotype``), so a change of
#: a float is sent as a whole number of 1e-4 steps: small integers, which gzip packs tightly.
NUMBER_UNIT = 10_000


def _is_float(value) -> bool:
    return isinstance(value, float) and value == value and abs(value) < 1e12


def _number_step(old, new) -> int | None:
    """``new - old`` in units of 1e-4 when both are floats on that grid and the decoder's
    ``(round(old * 1e4) + step) / 1e4`` gives ``new`` exactly; else None (sent whole)."""
    if not (_is_float(old) and _is_float(new)):
        return None
    k_old, k_new = round(old * NUMBER_UNIT), round(new * NUMBER_UNIT)
    if k_old / NUMBER_UNIT != old or k_new / NUMBER_UNIT != new:
        return None
    return k_new - k_old


def apply_genotype_patch(old, node):
    """The inverse of :func:`genotype_patch` (the dashboard's JS does the same)."""
    import copy

    if "=" in node:
        return copy.deepcopy(node["="])
    if "#" in node:
        moves = iter(node["#"])
        return _move_numbers(old, moves)
    if "+" in node:
        return (round(old * NUMBER_UNIT) + node["+"]) / NUMBER_UNIT
    if "{}" in node:
        out = dict(old)
        for key, child in node["{}"].items():
            if "-" in child:
                out.pop(key, None)
            else:
                out[key] = apply_genotype_patch(old.get(key), child)
        return out
    out = list(old)
    for index, child in node["[]"].items():
        out[int(index)] = apply_genotype_patch(old[int(index)], child)
    return out


def _move_numbers(doc, moves):
    if isinstance(doc, bool) or doc is None or isinstance(doc, str):
        return doc
    if isinstance(doc, (int, float)):
        step = next(moves)
        return doc if step == 0 else (round(doc * NUMBER_UNIT) + step) / NUMBER_UNIT
    if isinstance(doc, dict):
        moved = {key: _move_numbers(doc[key], moves) for key in sorted(doc)}  # the moves' order
        return {key: moved[key] for key in doc}  # the document's own key order
    return [_move_numbers(item, moves) for item in doc]
