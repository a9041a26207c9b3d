"""A C2FNAS search spread over workers in short steps (engine side; no web imports).

A task queue (the web app's Celery) calls three functions on a *search folder*:

- ``advance(root, submit)``: the orchestration step. Under the folder's lock it loads the
  strategy state, records the results that have arrived, re-submits candidates whose worker
  went silent, fills the free worker slots through ``submit(spec_dict)`` and saves; it returns
  at once (it never waits for a candidate). Returns ``"running"``, ``"coarse_done"`` or
  ``"cancelled"``.
- ``run_candidate(root, spec_dict, worker)``: trains one candidate in the calling worker,
  resuming from the candidate's own checkpoint, and writes its result file. A candidate whose
  result exists, or that a live worker holds (fresh heartbeat), is not trained again.
- ``finish(root)``: the fine (and scaling) stage and the final genotype.

Folder layout: ``settings.json`` (data folder, preset, overrides, workers, stale seconds),
``events.jsonl`` + ``checkpoints/`` (the orchestration's stream and stages, as a local run),
``candidates/<stage>/`` (each candidate's own ``events.jsonl``, ``checkpoints/``, ``heartbeat``),
``results/<id>.json``, ``cancel`` (present: cancelled), ``genotype.json``.

Every stream is rewound to the newest checkpoint of its own stages before anything is emitted,
so a killed step repeats its events once and never twice.

``sinks`` (optional, on each step): ``sinks(stream) -> [sink, ...]`` adds reporter sinks to a
stream, ``"search"`` for the orchestration's and the candidate's stage name for each candidate's
(the web app stores every stream's events as events of its run). The added sinks see the rewind
too, so they can drop what the stream drops.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nasengine.device import select_device
from nasengine.events import FileCancelToken, JsonLinesSink, Reporter
from nasengine.events.types import CANCELLED
from nasengine.executor import CandidateResult, CandidateSpec
from nasengine.training import checkpoint as ckpt

from .search import CandidateTrainer, CoarseStage, SearchContext, finish_search

__all__ = ["SearchFolder", "start", "advance", "run_candidate", "finish", "spec_to_dict",
           "spec_from_dict", "training_candidates", "ORCHESTRATION_STREAM", "SinkFactory"]

#: The stream name ``sinks`` gets for the orchestration's own events.
ORCHESTRATION_STREAM = "search"
#: ``sinks(stream) -> list of reporter sinks`` (see the module docstring).
SinkFactory = Callable[[str], list]


def spec_to_dict(spec: CandidateSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(doc: dict[str, Any]) -> CandidateSpec:
    return CandidateSpec(**doc)


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class SearchFolder:
    """Paths of one distributed search."""

    root: Path

    @property
    def settings(self) -> dict[str, Any]:
        return json.loads((self.root / "settings.json").read_text())

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def candidate_dir(self, stage: str) -> Path:
        return self.root / "candidates" / ckpt.check_stage_name(stage)

    def result_path(self, cand_id: str) -> Path:
        return self.root / "results" / f"{cand_id}.json"

    @property
    def cancel_path(self) -> Path:
        return self.root / "cancel"

    @contextlib.contextmanager
    def locked(self):
        """The orchestration lock (one ``advance`` at a time; released if its process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def start(root: str | os.PathLike[str], data_dir: str | os.PathLike[str], *, preset: str = "tiny",
          overrides: dict[str, Any] | None = None, workers: int = 1,
          stale_seconds: float = 120.0, device: str | None = None,
          meta: dict[str, Any] | None = None) -> SearchFolder:
    """Write the settings of a new search into ``root`` (``advance`` starts it). ``device``
    None: each worker picks its own (CUDA when present). ``meta``: JSON-able notes of the
    caller kept in the settings (the web app's run id and folder key)."""
    folder = SearchFolder(Path(root))
    _write_json(folder.root / "settings.json", {
        "data_dir": str(data_dir), "preset": preset, "overrides": dict(overrides or {}),
        "workers": int(workers), "stale_seconds": float(stale_seconds), "device": device,
        "meta": dict(meta or {})})
    return folder


def _config(settings: dict[str, Any]):
    from nasengine.methods.c2fnas import METHOD

    return METHOD.make_config(settings["preset"], settings["overrides"])


@dataclasses.dataclass
class _Channels:
    """What the orchestration needs of the data: channel counts only (no preprocessing)."""

    in_channels: int
    out_channels: int
    factory: Any = None
    val_cases: tuple = ()
    label_names: tuple = ()


def _channels(data_dir: str) -> _Channels:
    from nasengine.data import load_dataset

    spec = load_dataset(Path(data_dir))
    return _Channels(len(spec.channel_names), len(spec.labels))


def _stream(path: Path, checkpoint_dir: Path, extra: list | tuple = ()) -> Reporter:
    """A reporter on ``path`` (and the ``extra`` sinks) rewound to the newest checkpoint in
    ``checkpoint_dir`` (0 when none: a first attempt's partial events are dropped)."""
    reporter = Reporter([JsonLinesSink(path), *extra])
    reporter.rewind(ckpt.latest_reporter_seq(checkpoint_dir) or 0)
    return reporter


def _held(path: Path) -> bool:
    """True when a live process holds the lock file ``path`` (a training candidate). The lock
    dies with its process, so a killed worker's candidate is free at once."""
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _heartbeat_age(folder: SearchFolder, stage: str) -> float | None:
    beat = folder.candidate_dir(stage) / "heartbeat"
    return time.time() - beat.stat().st_mtime if beat.exists() else None


def training_candidates(root: str | os.PathLike[str]) -> list[str]:
    """Stages of the candidates a live process is training right now (their lock is held)."""
    base = Path(root) / "candidates"
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if d.is_dir() and _held(d / "lock"))


def advance(root: str | os.PathLike[str], submit, sinks: SinkFactory | None = None) -> str:
    """One orchestration step (see the module docstring). ``submit(spec_dict)`` sends a
    candidate to a worker queue; it must not wait for it."""
    folder = SearchFolder(Path(root))
    with folder.locked():
        settings = folder.settings
        config = _config(settings)
        reporter = _stream(folder.root / "events.jsonl", folder.checkpoints,
                           sinks(ORCHESTRATION_STREAM) if sinks else ())
        try:
            ctx = SearchContext(data=_channels(settings["data_dir"]), config=config,
                                reporter=reporter, checkpoint_dir=folder.checkpoints,
                                cancel=FileCancelToken(folder.cancel_path),
                                device=torch.device("cpu"))
            coarse = CoarseStage(ctx, resume=True)
            for spec in coarse.in_flight():
                path = folder.result_path(spec.candidate_id)
                if path.exists():
                    doc = json.loads(path.read_text())
                    coarse.on_result(CandidateResult(**doc))
            if folder.cancel_path.exists():
                # after the saved state: every later advance rewinds it away and emits it
                # again, so the stream ends with exactly one
                reporter.emit(CANCELLED, stage=CoarseStage.STAGE, step=coarse.strategy.evaluated,
                              checkpoint=str(ckpt.stage_path(folder.checkpoints, CoarseStage.STAGE)))
                return "cancelled"
            stale = float(settings["stale_seconds"])
            sent = folder.root / "sent"
            for spec in coarse.in_flight():  # a worker died: send its candidate again
                if _held(folder.candidate_dir(spec.stage) / "lock"):
                    continue
                age = _heartbeat_age(folder, spec.stage)
                marker = sent / spec.candidate_id
                sent_age = time.time() - marker.stat().st_mtime if marker.exists() else None
                silent = (age is None or age > stale) and (sent_age is None or sent_age > stale)
                if silent:
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()
                    submit(spec_to_dict(spec))
            while len(coarse.strategy.in_flight) < int(settings["workers"]):
                spec = coarse.next_candidate()
                if spec is None:
                    break
                marker = sent / spec.candidate_id
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                submit(spec_to_dict(spec))
            return "coarse_done" if coarse.done else "running"
        finally:
            reporter.close()


class _HeartbeatSink:
    """Touches ``path`` on every event: the orchestration's liveness signal of a candidate."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: dict[str, Any]) -> None:
        self.path.touch()


def _search_data(data_dir: str, config, device: torch.device):
    """The data of a candidate's training, prepared as ``api.search`` does."""
    from nasengine.api import prepare_data
    from nasengine.data import DataFactory
    from nasengine.methods.base import SearchData
    from nasengine.methods.c2fnas import METHOD

    settings = METHOD.data_settings(config)
    prepared = prepare_data(data_dir, divisor=settings.divisor, patch_size=settings.patch_size,
                            max_patch=settings.max_patch, val_fraction=settings.val_fraction,
                            seed=settings.seed)
    plan = prepared.plan
    factory = DataFactory(cases=prepared.cases, train_ids=prepared.splits.train,
                          val_ids=prepared.splits.val, patch_size=plan.patch_size,
                          batch_size=settings.batch_size, fg_oversample=settings.fg_oversample,
                          seed=settings.seed)
    loader = factory.loader(factory.train_ids, seed=settings.seed)
    return SearchData(plan=plan, train1=loader, train2=loader, val_cases=factory.val_cases(),
                      in_channels=plan.in_channels, out_channels=plan.out_channels,
                      label_names=prepared.label_names, device=device, factory=factory)


def run_candidate(root: str | os.PathLike[str], spec_doc: dict[str, Any], worker: str,
                  sinks: SinkFactory | None = None) -> str:
    """Train one candidate here (see the module docstring). Returns ``"done"`` (result
    written), ``"known"`` (it existed), ``"busy"`` (a live worker has it) or ``"cancelled"``."""
    folder = SearchFolder(Path(root))
    spec = spec_from_dict(spec_doc)
    result_path = folder.result_path(spec.candidate_id)
    if result_path.exists():
        return "known"
    if folder.cancel_path.exists():
        return "cancelled"
    settings = folder.settings
    cand_dir = folder.candidate_dir(spec.stage)
    cand_dir.mkdir(parents=True, exist_ok=True)
    with open(cand_dir / "lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "busy"  # a live worker trains it
        if result_path.exists():  # finished while this message waited
            return "known"
        (cand_dir / "owner").write_text(worker)
        (cand_dir / "heartbeat").touch()
        return _train_candidate(folder, spec, settings, cand_dir, result_path, worker,
                                sinks(spec.stage) if sinks else ())


def _train_candidate(folder: SearchFolder, spec: CandidateSpec, settings: dict[str, Any],
                     cand_dir: Path, result_path: Path, worker: str, extra: list | tuple = ()
                     ) -> str:
    from nasengine.events import Cancelled

    config = _config(settings)
    device = select_device(settings.get("device"))
    reporter = _stream(cand_dir / "events.jsonl", cand_dir / "checkpoints", extra)
    reporter.add_sink(_HeartbeatSink(cand_dir / "heartbeat"))
    started = time.time()
    try:
        ctx = SearchContext(data=_search_data(settings["data_dir"], config, device),
                            config=config, reporter=reporter,
                            checkpoint_dir=cand_dir / "checkpoints",
                            cancel=FileCancelToken(folder.cancel_path), device=device)
        try:
            result = CandidateTrainer(ctx)(spec)
        except Cancelled:
            return "cancelled"
        except Exception as exc:  # noqa: BLE001 - a failed candidate, not a failed search
            result = CandidateResult(spec.candidate_id, None, ok=False,
                                     error=f"{type(exc).__name__}: {exc}")
    finally:
        reporter.close()
    # the queue's name of the worker (e.g. "gpu1@host") when given, else the trainer's own
    # host:pid; an empty name never hides the one the trainer recorded
    details = {**dict(result.details), "worker": worker or result.details.get("worker", ""),
               "started": started, "ended": time.time()}
    _write_json(result_path, {**dataclasses.asdict(result), "details": details})
    return "done"


def finish(root: str | os.PathLike[str], sinks: SinkFactory | None = None) -> dict[str, Any] | None:
    """The fine (and scaling) stage on this worker, then ``genotype.json``; idempotent.
    Returns the genotype, or None when another live process is finishing this search."""
    folder = SearchFolder(Path(root))
    folder.root.mkdir(parents=True, exist_ok=True)
    with open(folder.root / "finish.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live worker runs the fine stage (a re-sent finish message)
        return _finish(folder, sinks)


def _finish(folder: SearchFolder, sinks: SinkFactory | None) -> dict[str, Any]:
    from nasengine.genotype import dump, load, validate

    out = folder.root / "genotype.json"
    if out.exists():
        return load(out)
    settings = folder.settings
    config = _config(settings)
    device = select_device(settings.get("device"))
    reporter = _stream(folder.root / "events.jsonl", folder.checkpoints,
                       sinks(ORCHESTRATION_STREAM) if sinks else ())
    try:
        ctx = SearchContext(data=_search_data(settings["data_dir"], config, device),
                            config=config, reporter=reporter, checkpoint_dir=folder.checkpoints,
                            cancel=FileCancelToken(folder.cancel_path), device=device)
        coarse = CoarseStage(ctx, resume=True)
        if not coarse.done:
            raise RuntimeError("finish: the coarse stage has candidates left")
        genotype = validate(finish_search(ctx, coarse, resume=True))
        dump(genotype, out)
        return genotype
    finally:
        reporter.close()
