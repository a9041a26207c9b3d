"""The C2FNAS search: the coarse stage (Algorithm 1 over candidates trained from scratch, through
a candidate executor), the fine stage (supernet + random search), and the final genotype.

Stages and their checkpoints (``checkpoints/<stage>.pt``):

- ``coarse``: the strategy state (clusters, history, in-flight candidates, RNG) and each
  finished candidate's result, saved after every submission and every completion;
- ``coarse-<id[:16]>``: one per candidate, written by the shared from-scratch trainer (a killed
  or cancelled candidate resumes from it);
- ``supernet``: the fine stage's supernet training (the shared trainer again);
- ``fine-search``: the scores of the colourings evaluated so far.

Events: the trainer's ``run_started`` / ``step`` / ``checkpoint`` per candidate (``stage``,
``candidate``), a ``validation`` per candidate at ``val_stride``, and the method's own
``c2fnas.clusters``, ``c2fnas.candidate_submitted``, ``c2fnas.candidate_finished`` (with the
clusters' counts: Fig. 4), ``c2fnas.fine_candidate``; an ``architecture`` per finished
candidate and for the result, then ``finished``. The fine search also emits a core ``step`` per
scored colouring (stage ``fine-search``, phase ``fine_search``), and the search ends with one
``step`` of stage ``final``, phase ``done``, ``progress`` 1.0 just before ``architecture`` /
``finished``: progress bars and the run's phase follow core events only.

Overall ``progress`` (0..1, never decreasing in a sequential run): the coarse stage up to
``COARSE_SHARE`` (all of it without a fine stage), the supernet up to ``SUPERNET_END``, the fine
search up to 1.0; with a scaling stage the last ``SCALING_SHARE`` is its (see ``progress_ends``).
"""
from __future__ import annotations

import dataclasses
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from nasengine.config import build_config, config_to_dict
from nasengine.device import select_device
from nasengine.events import Cancelled, CancelToken, as_cancel_token
from nasengine.events.types import (
    ARCHITECTURE,
    CANCELLED,
    CHECKPOINT,
    FINISHED,
    RUN_STARTED,
    STEP,
    VALIDATION,
)
from nasengine.executor import (
    CandidateExecutor,
    CandidateResult,
    CandidateSpec,
    LocalExecutor,
    drive,
)
from nasengine.genotype import build_network
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import amp_enabled, evaluate_dice, seed_everything
from nasengine.training.retrain import RetrainConfig, train_from_scratch

from .config import C2FNASConfig
from .evolution import EvolutionSettings, TopologyEvolution
from .genotypes import candidate_id, topology_genotype
from .ops import CELL_OP_NAMES
from .space import enumerate_codes
from .supernet import SinglePathSupernet

__all__ = ["SearchContext", "CandidateTrainer", "CoarseStage", "run_search",
           "candidate_train_config", "overlap_for_stride", "COARSE_SHARE", "SUPERNET_END",
           "SCALING_SHARE", "ProgressEnds", "progress_ends", "ScalingStage", "finish_search",
           "FINE_SEARCH_STAGE", "FINAL_STAGE"]

#: Share of the overall progress the coarse stage covers when a fine stage follows.
COARSE_SHARE = 0.6
#: Overall progress at the end of the supernet training (the fine search covers the rest).
SUPERNET_END = 0.9
#: Share of the overall progress of the optional scaling stage, at the end. Choice: a fixed
#: small share, as its few candidates are short next to the coarse stage's budget.
SCALING_SHARE = 0.05
FINE_SEARCH_STAGE = "fine-search"
#: Stage of the search's last ``step`` event (phase ``done``, progress 1.0).
FINAL_STAGE = "final"


@dataclasses.dataclass(frozen=True)
class ProgressEnds:
    """Overall progress at the end of each stage of one search's config."""

    coarse: float
    supernet: float
    fine_search: float
    scaling: float = 1.0


def progress_ends(config: C2FNASConfig) -> ProgressEnds:
    """Where each stage ends on the overall 0..1 scale (absent stages take no share)."""
    last = 1.0 - (SCALING_SHARE if config.scaling_multipliers else 0.0)
    if not config.fine_stage:
        return ProgressEnds(coarse=last, supernet=last, fine_search=last)
    return ProgressEnds(coarse=COARSE_SHARE, supernet=SUPERNET_END, fine_search=last)


def overlap_for_stride(stride: int, patch: Sequence[int]) -> float:
    """The sliding-window overlap whose step is ``stride`` voxels on the smallest patch edge
    (MONAI steps by ``roi * (1 - overlap)``)."""
    edge = min(int(s) for s in patch)
    return max(0.0, min(0.95, 1.0 - float(stride) / edge))


def candidate_train_config(config: C2FNASConfig, step_factor: int = 1) -> dict[str, Any]:
    """The from-scratch training settings of one candidate (``RetrainConfig`` fields)."""
    return {"recipe": config.candidate_recipe,
            "warmup_steps": config.warmup_steps, "steps": config.steps * step_factor,
            "lr_start": config.lr_start, "lr_peak": config.lr_peak,
            "lr_milestones": [m * step_factor for m in config.lr_milestones],
            "lr_gamma": config.lr_gamma, "momentum": config.momentum,
            "weight_decay": config.weight_decay, "batch_size": config.batch_size,
            "patch_size": list(config.patch_size), "validate_every": 0,
            "checkpoint_every": config.checkpoint_every, "sw_batch_size": config.sw_batch_size,
            "amp": config.amp, "seed": config.seed, "export": False}


@dataclasses.dataclass
class SearchContext:
    """What every stage of one search shares: data (a ``SearchData`` with ``factory``),
    config, the run's reporter, checkpoint directory, cancel token and device."""

    data: Any
    config: C2FNASConfig
    reporter: Any
    checkpoint_dir: Path
    cancel: CancelToken
    device: torch.device

    @property
    def patch(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.config.patch_size)  # type: ignore[return-value]

    def loader(self):
        """The candidates' training batches: every candidate sees the same stream."""
        factory = self.data.factory
        return factory.loader(factory.train_ids, patch_size=self.patch,
                              batch_size=self.config.batch_size, seed=self.config.seed)

    def save(self, stage: str, state: dict[str, Any]) -> None:
        """Save a stage's plain state with the seq of the last event emitted (a resumed run
        rewinds to it and keeps that event)."""
        ckpt.save(ckpt.stage_path(self.checkpoint_dir, stage),
                  {**state, "reporter_seq": int(self.reporter.seq)})

    def load(self, stage: str) -> dict[str, Any] | None:
        path = ckpt.stage_path(self.checkpoint_dir, stage)
        return ckpt.load(path) if path.exists() else None


@dataclasses.dataclass
class _TrainingData:
    train: Any
    val_cases: Sequence[Any]
    label_names: list[str] | None = None


def candidate_seed(config_seed: int, cand_id: str) -> int:
    """Initial-weight seed of a candidate: fixed by its id, whatever order it runs in."""
    return (int(config_seed) + int(cand_id[:8], 16)) % 2**31


class CandidateTrainer:
    """The runner of one candidate: train from scratch (resuming its stage checkpoint), then
    the sliding-window validation at ``val_stride``; its fitness is the mean foreground Dice.
    """

    def __init__(self, ctx: SearchContext):
        self.ctx = ctx

    def __call__(self, spec: CandidateSpec) -> CandidateResult:
        ctx = self.ctx
        started = time.perf_counter()
        seed_everything(candidate_seed(ctx.config.seed, spec.candidate_id))
        network = build_network(dict(spec.genotype))
        train_config = build_config(RetrainConfig, dict(spec.train_config))
        span = tuple(spec.meta.get("progress_span", (0.0, 1.0)))
        train_from_scratch(network, _TrainingData(ctx.loader(), []), train_config, ctx.reporter,
                           ctx.checkpoint_dir, stage=spec.stage, candidate=spec.candidate_id,
                           cancel=ctx.cancel, resume=True, device=ctx.device,
                           roi_size=ctx.patch, progress_span=span)  # type: ignore[arg-type]
        dice, mean = self.validate(network, ctx.config.val_stride)
        ctx.reporter.emit(VALIDATION, stage=spec.stage, candidate=spec.candidate_id,
                          step=train_config.total_steps, dice=dice, mean_dice=mean,
                          stride=ctx.config.val_stride)
        return CandidateResult(spec.candidate_id, 0.0 if mean is None else float(mean),
                               details={"dice": dice, "seconds": time.perf_counter() - started,
                                        "worker": f"{socket.gethostname()}:{os.getpid()}"})

    def validate(self, network: torch.nn.Module, stride: int):
        ctx = self.ctx
        return evaluate_dice(network, ctx.data.val_cases, roi_size=ctx.patch, device=ctx.device,
                             label_names=ctx.data.label_names,
                             sw_batch_size=ctx.config.sw_batch_size,
                             overlap=overlap_for_stride(stride, ctx.patch),
                             amp=amp_enabled(ctx.config.amp, ctx.device))


class CoarseStage:
    """Algorithm 1 as a ``CandidateSource``: proposes topologies, turns them into candidate
    specs, records results, and saves its state (stage ``coarse``) after every change.

    Args:
        ctx: the search context.
        resume: continue from the saved state when there is one.
        progress_end: overall progress at the end of the coarse stage.
    """

    STAGE = "coarse"
    KIND = "c2fnas.coarse"

    def __init__(self, ctx: SearchContext, resume: bool, progress_end: float | None = None):
        self.ctx = ctx
        c = ctx.config
        self.codes = enumerate_codes(c.num_cells, c.depth)
        self.strategy = TopologyEvolution(self.codes, EvolutionSettings(
            clusters=c.clusters, init_per_cluster=c.init_per_cluster, budget=c.candidates,
            explore=c.explore, seed=c.seed))
        self.progress_end = progress_ends(c).coarse if progress_end is None else progress_end
        self.results: dict[str, dict[str, Any]] = {}
        self.orders: dict[int, int] = {}  # in-flight index -> submission order
        state = ctx.load(self.STAGE) if resume else None
        if state is not None:
            self.load_state(state)
        else:
            ctx.reporter.emit(RUN_STARTED, stage=self.STAGE, phase="coarse", progress=0.0,
                              total_steps=c.candidates, candidates=c.candidates,
                              config=config_to_dict(c))
            sizes = [len(m) for m in self.strategy.members]
            ctx.reporter.emit("c2fnas.clusters", stage=self.STAGE, sizes=sizes,
                              labels=self.strategy.labels, codes=[list(x) for x in self.codes])
            self.save()

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"kind": self.KIND, "stage": self.STAGE, "evolution": self.strategy.state_dict(),
                "results": {k: dict(v) for k, v in self.results.items()},
                "orders": [[i, o] for i, o in self.orders.items()]}

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.KIND:
            raise ValueError(f"coarse.pt is not a {self.KIND} checkpoint")
        self.strategy.load_state_dict(state["evolution"])
        self.results = {k: dict(v) for k, v in state["results"].items()}
        self.orders = {int(i): int(o) for i, o in state["orders"]}

    def save(self) -> None:
        self.ctx.save(self.STAGE, self.state())

    # -- candidates -------------------------------------------------------------------------
    def genotype(self, index: int, ops: Sequence[str] | None = None) -> dict[str, Any]:
        c, data = self.ctx.config, self.ctx.data
        return topology_genotype(self.codes[index], ops, in_channels=data.in_channels,
                                 out_channels=data.out_channels, base_channels=c.base_channels)

    def spec(self, index: int) -> CandidateSpec:
        doc = self.genotype(index)
        cid = candidate_id(doc)
        order = self.orders.get(index, 0)
        budget = max(1, self.ctx.config.candidates)
        span = (self.progress_end * order / budget, self.progress_end * (order + 1) / budget)
        flight = self.strategy.in_flight.get(index, {})
        return CandidateSpec(candidate_id=cid, genotype=doc,
                             train_config=candidate_train_config(self.ctx.config),
                             stage=f"coarse-{cid[:16]}",
                             meta={"index": index, "cluster": self.strategy.labels[index],
                                   "reason": flight.get("reason"), "order": order,
                                   "topology_code": list(self.codes[index]),
                                   "progress_span": list(span)})

    def in_flight(self) -> list[CandidateSpec]:
        return [self.spec(i) for i in self.strategy.in_flight]

    def next_candidate(self) -> CandidateSpec | None:
        order = self.strategy.evaluated + len(self.strategy.in_flight)
        proposal = self.strategy.propose()
        if proposal is None:
            return None
        self.orders[proposal.index] = order
        spec = self.spec(proposal.index)
        self.ctx.reporter.emit("c2fnas.candidate_submitted", stage=self.STAGE,
                               candidate=spec.candidate_id, topology_code=spec.meta["topology_code"],
                               cluster=proposal.cluster, reason=proposal.reason, order=order)
        self.save()
        return spec

    def index_of(self, cand_id: str) -> int | None:
        for index in self.strategy.in_flight:
            if candidate_id(self.genotype(index)) == cand_id:
                return index
        return None

    def on_result(self, result: CandidateResult) -> None:
        index = self.index_of(result.candidate_id)
        if index is None:  # not in flight: a duplicate completion
            return
        spec = self.spec(index)
        fitness = result.metric if result.ok else None
        self.strategy.record(index, fitness)
        self.orders.pop(index, None)
        entry = {"index": index, "candidate": result.candidate_id, "mean_dice": fitness,
                 "ok": bool(result.ok), "error": result.error,
                 "topology_code": list(self.codes[index]), "cluster": spec.meta["cluster"]}
        self.results[result.candidate_id] = entry
        details = dict(result.details)
        self.ctx.reporter.emit(
            "c2fnas.candidate_finished", stage=self.STAGE, candidate=result.candidate_id,
            topology_code=entry["topology_code"], cluster=entry["cluster"],
            reason=spec.meta["reason"], mean_dice=fitness, ok=entry["ok"], error=result.error,
            dice=details.get("dice"), seconds=details.get("seconds"),
            worker=details.get("worker"), evaluated=self.strategy.evaluated,
            cluster_counts=self.strategy.cluster_counts(),
            progress=self.progress_end * self.strategy.evaluated / max(1, self.ctx.config.candidates))
        self.ctx.reporter.emit(ARCHITECTURE, stage=self.STAGE, candidate=result.candidate_id,
                               step=self.strategy.evaluated, genotype=spec.genotype)
        self.save()

    @property
    def done(self) -> bool:
        return self.strategy.done

    def best(self) -> dict[str, Any]:
        best = self.strategy.best()
        if best is None:
            raise RuntimeError("the coarse stage ended without one successful candidate")
        return best


def _fine_paths(num_cells: int, k: int, seed: int) -> list[tuple[str, ...]]:
    """``k`` distinct random colourings (all of them when ``k`` covers the space), in a
    fixed order for a seed."""
    total = len(CELL_OP_NAMES) ** num_cells
    rng = random.Random(seed)
    if k >= total:
        picks = list(range(total))
        rng.shuffle(picks)
    else:
        picks = rng.sample(range(total), k)
    paths = []
    for p in picks:
        ops = []
        for _ in range(num_cells):
            p, r = divmod(p, len(CELL_OP_NAMES))
            ops.append(CELL_OP_NAMES[r])
        paths.append(tuple(ops))
    return paths


def fine_stage(ctx: SearchContext, code: Sequence[int]) -> tuple[list[str], float | None]:
    """Supernet training (stage ``supernet``), then random search over ``fine_candidates``
    colourings scored with its weights (stage ``fine-search``). Returns the best ops."""
    c, data = ctx.config, ctx.data
    seed_everything(c.seed + 1)
    supernet = SinglePathSupernet(code, in_channels=data.in_channels,
                                  out_channels=data.out_channels, base_channels=c.base_channels)
    ends = progress_ends(c)
    train_config = build_config(RetrainConfig, candidate_train_config(c, c.supernet_step_factor))
    train_from_scratch(supernet, _TrainingData(ctx.loader(), []), train_config, ctx.reporter,
                       ctx.checkpoint_dir, stage="supernet", cancel=ctx.cancel, resume=True,
                       device=ctx.device, roi_size=ctx.patch,
                       progress_span=(ends.coarse, ends.supernet))
    supernet.eval()
    paths = _fine_paths(len(code), c.fine_candidates, c.seed)
    stage = FINE_SEARCH_STAGE
    state = ctx.load(stage)
    scores: list[float | None] = [] if state is None else list(state["scores"])

    def fine_progress(done: int) -> float:
        return ends.supernet + (ends.fine_search - ends.supernet) * done / len(paths)

    if state is None:
        ctx.reporter.emit(RUN_STARTED, stage=stage, phase="fine_search", total_steps=len(paths),
                          progress=fine_progress(0), device=str(ctx.device))
    trainer = CandidateTrainer(ctx)
    while len(scores) < len(paths):
        if ctx.cancel.is_cancelled():
            ctx.save(stage, {"kind": "c2fnas.fine", "scores": scores})
            path = ckpt.stage_path(ctx.checkpoint_dir, stage)
            ctx.reporter.emit(CHECKPOINT, stage=stage, step=len(scores), path=str(path))
            ctx.reporter.emit(CANCELLED, stage=stage, step=len(scores), checkpoint=str(path))
            raise Cancelled(len(scores), str(path))
        ops = paths[len(scores)]
        supernet.set_path(ops)
        started = time.perf_counter()
        _, mean = trainer.validate(supernet, c.fine_val_stride)
        scores.append(mean)
        progress = fine_progress(len(scores))
        ctx.reporter.emit("c2fnas.fine_candidate", stage=stage, step=len(scores),
                          total_steps=len(paths), ops=list(ops), mean_dice=mean,
                          progress=progress)
        # the core step event of the same colouring: what progress bars and the run's phase
        # follow (they know no method's own events); it trains nothing, so no losses or lrs
        ctx.reporter.emit(STEP, stage=stage, step=len(scores), total_steps=len(paths),
                          phase="fine_search", progress=progress, losses={}, lrs={},
                          metrics={} if mean is None else {"mean_dice": mean},
                          seconds=time.perf_counter() - started)
        ctx.save(stage, {"kind": "c2fnas.fine", "scores": scores})
    ranked = sorted(range(len(paths)), key=lambda i: (-(scores[i] if scores[i] is not None
                                                         else -1.0), i))
    best = ranked[0]
    return list(paths[best]), scores[best]


class ScalingStage:
    """The optional third stage (sec. 5.3): the final network at each channel multiplier,
    trained from scratch as candidates of the same executor (stage ``scaling``). A
    ``CandidateSource`` over a fixed list; its results are saved after every completion."""

    STAGE = "scaling"

    def __init__(self, ctx: SearchContext, code: Sequence[int], ops: Sequence[str] | None,
                 resume: bool, known: dict[str, float | None] | None = None):
        self.ctx, c = ctx, ctx.config
        #: results of candidates trained earlier in the search (the same network at x1.0
        #: without a fine stage is a coarse candidate): reused, never trained twice
        self.known = dict(known or {})
        self.bases = [max(2, int(round(c.base_channels * m / 2)) * 2)
                      for m in c.scaling_multipliers]
        self.specs: list[CandidateSpec] = []
        ends = progress_ends(c)
        start, share = ends.fine_search, ends.scaling - ends.fine_search
        count = max(1, len(c.scaling_multipliers))
        for order, (m, base) in enumerate(zip(c.scaling_multipliers, self.bases)):
            doc = topology_genotype(code, ops, in_channels=ctx.data.in_channels,
                                    out_channels=ctx.data.out_channels, base_channels=base,
                                    meta={"channel_multiplier": m})
            cid = candidate_id(doc)
            self.specs.append(CandidateSpec(cid, doc, candidate_train_config(c),
                                            stage=f"scaling-{cid[:16]}",
                                            meta={"multiplier": m, "base_channels": base,
                                                  "progress_span": [
                                                      start + share * order / count,
                                                      start + share * (order + 1) / count]}))
        state = ctx.load(self.STAGE) if resume else None
        self.results: dict[str, float | None] = dict(state["results"]) if state else {}
        self.submitted: list[str] = list(state["submitted"]) if state else []

    def _save(self) -> None:
        self.ctx.save(self.STAGE, {"kind": "c2fnas.scaling", "results": dict(self.results),
                                   "submitted": list(self.submitted)})

    def in_flight(self) -> list[CandidateSpec]:
        return [s for s in self.specs if s.candidate_id in self.submitted
                and s.candidate_id not in self.results]

    def next_candidate(self) -> CandidateSpec | None:
        for s in self.specs:
            if s.candidate_id in self.submitted:
                continue
            self.submitted.append(s.candidate_id)
            if s.candidate_id in self.known:
                self.on_result(CandidateResult(s.candidate_id, self.known[s.candidate_id],
                                               ok=self.known[s.candidate_id] is not None))
                continue
            self._save()
            return s
        return None

    def on_result(self, result: CandidateResult) -> None:
        if result.candidate_id in self.results or result.candidate_id not in self.submitted:
            return
        self.results[result.candidate_id] = result.metric if result.ok else None
        spec = next(s for s in self.specs if s.candidate_id == result.candidate_id)
        self.ctx.reporter.emit("c2fnas.scaling_result", stage=self.STAGE,
                               candidate=result.candidate_id, multiplier=spec.meta["multiplier"],
                               base_channels=spec.meta["base_channels"],
                               mean_dice=self.results[result.candidate_id])
        self._save()

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.specs)

    def best_base(self) -> int:
        scored = [(self.results[s.candidate_id], -i) for i, s in enumerate(self.specs)
                  if self.results.get(s.candidate_id) is not None]
        if not scored:
            return self.ctx.config.base_channels
        _, neg = max(scored)
        return self.bases[-neg]


def run_search(data: Any, config: C2FNASConfig, reporter: Any, checkpoint_dir: str | Path,
               cancel: CancelToken | None = None, resume: bool = False,
               device: torch.device | None = None,
               executor: CandidateExecutor | Callable[[CandidateTrainer], CandidateExecutor]
               | None = None) -> dict[str, Any]:
    """The whole search in this process; returns the final genotype.

    ``executor``: where the coarse candidates train; default a ``LocalExecutor`` (sequential,
    in this process) over ``CandidateTrainer``; a callable gets the trainer and returns one.
    """
    ctx = SearchContext(data=data, config=config, reporter=reporter,
                        checkpoint_dir=Path(checkpoint_dir), cancel=as_cancel_token(cancel),
                        device=device if device is not None else select_device())
    trainer = CandidateTrainer(ctx)
    if executor is None:
        executor = LocalExecutor(trainer)
    elif callable(executor) and not hasattr(executor, "submit"):
        executor = executor(trainer)
    coarse = CoarseStage(ctx, resume)
    drive(coarse, executor)
    return finish_search(ctx, coarse, executor, resume)


def finish_search(ctx: SearchContext, coarse: CoarseStage,
                  executor: CandidateExecutor | None = None, resume: bool = False
                  ) -> dict[str, Any]:
    """After the coarse stage: the fine stage, the optional scaling stage (through
    ``executor``, default a local one), the ``architecture`` and ``finished`` events.
    Returns the final genotype."""
    config, data, reporter = ctx.config, ctx.data, ctx.reporter
    best = coarse.best()
    code = coarse.codes[best["index"]]
    ops, fine_score = (fine_stage(ctx, code) if config.fine_stage else (None, None))
    base = config.base_channels
    if config.scaling_multipliers:
        known = {k: v["mean_dice"] for k, v in coarse.results.items()}
        scaling = ScalingStage(ctx, code, ops, resume, known)
        drive(scaling, executor if executor is not None else LocalExecutor(CandidateTrainer(ctx)))
        base = scaling.best_base()
    genotype = topology_genotype(
        code, ops, in_channels=data.in_channels, out_channels=data.out_channels,
        base_channels=base,
        meta={"cluster": int(coarse.strategy.labels[best["index"]]),
              "coarse_mean_dice": best["fitness"], "fine_score": fine_score,
              "candidates_evaluated": coarse.strategy.evaluated,
              "cluster_counts": coarse.strategy.cluster_counts(),
              "search_patch_size": list(config.patch_size)})
    # the one event that says the search is done to whatever follows core events only (the
    # run page's phase and bar): every stage has ended, so the overall progress is 1.0
    reporter.emit(STEP, stage=FINAL_STAGE, step=1, total_steps=1, phase="done", progress=1.0,
                  losses={}, lrs={}, metrics={})
    reporter.emit(ARCHITECTURE, stage=FINAL_STAGE, step=coarse.strategy.evaluated,
                  genotype=genotype)
    reporter.emit(FINISHED, genotype=genotype)
    return genotype
