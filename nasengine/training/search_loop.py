"""Bi-level differentiable search loop (DARTS / DiNTS Sec. 3.6 and 4.1).

Phases over ``total_steps = warmup_steps + weight_only_steps + search_steps`` weight steps:

1. warm-up: weights only, learning rate rising linearly ``lr_start -> lr_peak``;
2. weights only at ``lr_peak`` (multi-step decay, milestones counted after warm-up);
3. search: each step is one weight step (SGD, ``L_seg`` on *train1*) followed by one
   architecture step (Adam, ``L_arch = L_seg + t/t_all * sum(network.arch_regularisers())``
   on *train2*), ``t = 1..t_all`` counting architecture steps (eq. 11).

The loop is resumable bit for bit: a checkpoint holds weights and architecture parameters,
both optimisers, AMP scalers, the loaders' states, every RNG state, the step and the
reporter's ``seq``.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nasengine.config import build_config, config_to_dict, setting
from nasengine.device import describe_device, select_device
from nasengine.events import Cancelled, CancelToken, NullReporter, Reporter, as_cancel_token
from nasengine.events.types import (ARCHITECTURE, CANCELLED, CHECKPOINT, FINISHED, RUN_STARTED,
                                    STEP, VALIDATION)
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import (amp_enabled, restore_or_start, autocast, batch_to, compact_genotype,
                                       evaluate_dice, load_loader_state, loader_state,
                                       make_scaler, memory_usage)
from nasengine.training.losses import DiceCELoss
from nasengine.training.schedule import lr_at


@runtime_checkable
class SearchableNetwork(Protocol):
    """What the loop needs from a supernet (an ``nn.Module``)."""

    def weight_parameters(self) -> Iterator[nn.Parameter]: ...
    def arch_parameters(self) -> Iterator[nn.Parameter]: ...
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...  # [B,C,*p] -> logits [B,K,*p]
    def arch_regularisers(self) -> dict[str, torch.Tensor]: ...  # already weighted
    def snapshot(self) -> dict[str, Any]: ...  # continuous genotype
    def decode(self) -> dict[str, Any]: ...  # discrete genotype


@dataclasses.dataclass
class SearchSchedule:
    """Optimisation schedule of a bi-level search (defaults: DiNTS Sec. 4.1)."""

    warmup_steps: int = setting(1000, "Warm-up steps (weights only, lr rising linearly)",
                                minimum=0)
    weight_only_steps: int = setting(10000, "Weight-only steps after warm-up", minimum=0)
    search_steps: int = setting(10000, "Steps that alternate weight and architecture updates",
                                minimum=0)
    lr_start: float = setting(0.025, "SGD learning rate at the start of warm-up", minimum=0.0)
    lr_peak: float = setting(0.2, "SGD learning rate after warm-up", minimum=0.0)
    lr_milestones: tuple[int, ...] = setting((8000, 16000), "Steps after warm-up at which the "
                                             "SGD learning rate decays", minimum=0)
    lr_gamma: float = setting(0.5, "Decay factor at each milestone", minimum=0.0, maximum=1.0)
    momentum: float = setting(0.9, "SGD momentum", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "SGD weight decay", minimum=0.0)
    arch_lr: float = setting(0.008, "Adam learning rate of the architecture parameters",
                             minimum=0.0)
    arch_weight_decay: float = setting(0.0, "Adam weight decay of the architecture parameters",
                                       minimum=0.0)
    snapshot_every: int = setting(100, "Architecture snapshot event every N steps (0: only at "
                                  "start)", minimum=0)
    validate_every: int = setting(1000, "Validation every N steps and at the end (0: never)",
                                  minimum=0)
    checkpoint_every: int = setting(500, "Checkpoint every N steps (0: only on cancel/end)",
                                    minimum=0)
    amp: bool = setting(True, "Mixed precision (used on CUDA only)")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.weight_only_steps + self.search_steps

    @property
    def search_start(self) -> int:
        """0-based step index of the first architecture step."""
        return self.warmup_steps + self.weight_only_steps

    def lr(self, step: int) -> float:
        return lr_at(step, warmup_steps=self.warmup_steps, lr_start=self.lr_start,
                     lr_peak=self.lr_peak, milestones=self.lr_milestones, gamma=self.lr_gamma)


def _set_lr(optimiser: torch.optim.Optimizer, lr: float) -> None:
    for group in optimiser.param_groups:
        group["lr"] = lr


def _grad_step(loss: torch.Tensor, params: Sequence[nn.Parameter],
               optimiser: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Gradients of ``loss`` w.r.t. ``params`` only, then one (scaled) optimiser step."""
    optimiser.zero_grad(set_to_none=True)
    grads = torch.autograd.grad(scaler.scale(loss), params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = g
    scaler.step(optimiser)
    scaler.update()


class _Run:
    """State of one search run (kept together so checkpointing sees all of it)."""

    def __init__(self, network, train1, train2, schedule: SearchSchedule, device, amp):
        self.network, self.train1, self.train2 = network, train1, train2
        self.schedule = schedule
        self.device = device
        self.amp = amp
        self.weights = list(network.weight_parameters())
        self.arch = list(network.arch_parameters())
        if not self.weights:
            raise ValueError("the network has no weight parameters")
        self.w_opt = torch.optim.SGD(self.weights, lr=schedule.lr_start,
                                     momentum=schedule.momentum,
                                     weight_decay=schedule.weight_decay)
        self.a_opt = torch.optim.Adam(self.arch, lr=schedule.arch_lr,
                                      weight_decay=schedule.arch_weight_decay) if self.arch else None
        self.w_scaler = make_scaler(device, amp)
        self.a_scaler = make_scaler(device, amp)
        self.loss_fn = DiceCELoss()
        self.step = 0

    def state(self, reporter_seq: int) -> dict[str, Any]:
        return {
            "kind": "search", "step": self.step, "reporter_seq": reporter_seq,
            "network": self.network.state_dict(),
            "weight_optimiser": self.w_opt.state_dict(),
            "arch_optimiser": self.a_opt.state_dict() if self.a_opt else None,
            "weight_scaler": self.w_scaler.state_dict(),
            "arch_scaler": self.a_scaler.state_dict(),
            "train1": loader_state(self.train1), "train2": loader_state(self.train2),
            "rng": ckpt.capture_rng(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "search":
            raise ValueError("checkpoint is not a search checkpoint")
        self.network.load_state_dict(state["network"])
        self.w_opt.load_state_dict(state["weight_optimiser"])
        if self.a_opt is not None and state["arch_optimiser"] is not None:
            self.a_opt.load_state_dict(state["arch_optimiser"])
        if state["weight_scaler"]:
            self.w_scaler.load_state_dict(state["weight_scaler"])
        if state["arch_scaler"]:
            self.a_scaler.load_state_dict(state["arch_scaler"])
        load_loader_state(self.train1, state["train1"])
        load_loader_state(self.train2, state["train2"])
        ckpt.restore_rng(state["rng"])
        self.step = int(state["step"])

    def weight_step(self, lr: float) -> float:
        _set_lr(self.w_opt, lr)
        image, label = batch_to(next(self.train1), self.device)
        with autocast(self.device, self.amp):
            logits = self.network(image)
        loss = self.loss_fn(logits, label)
        _grad_step(loss, self.weights, self.w_opt, self.w_scaler)
        return float(loss.detach())

    def arch_step(self, ratio: float) -> dict[str, float]:
        image, label = batch_to(next(self.train2), self.device)
        with autocast(self.device, self.amp):
            logits = self.network(image)
        seg = self.loss_fn(logits, label)
        regs = dict(self.network.arch_regularisers())
        reg_sum = sum((r.float() for r in regs.values()), torch.zeros((), device=self.device))
        loss = seg + ratio * reg_sum
        _grad_step(loss, self.arch, self.a_opt, self.a_scaler)
        out = {"arch": float(loss.detach()), "arch_seg": float(seg.detach())}
        out.update({f"reg_{k}": float(v.detach()) for k, v in regs.items()})
        return out


def _checkpoint(run: _Run, reporter: Reporter, path: Path) -> Path:
    """Save with the seq the following ``checkpoint`` event will carry, then emit it.

    A run resumed from this checkpoint rewinds to that event, so the event stays and anything
    after it (e.g. ``cancelled``) is dropped.
    """
    ckpt.save(path, run.state(reporter.seq + 1))
    reporter.emit(CHECKPOINT, step=run.step, path=str(path))
    return path


def run_bilevel_search(network: nn.Module, *, train1: Iterator[dict[str, torch.Tensor]],
                       train2: Iterator[dict[str, torch.Tensor]], val_cases: Sequence[Any],
                       schedule: SearchSchedule | Mapping[str, Any],
                       reporter: Reporter | None = None,
                       checkpoint_dir: str | Path, cancel: CancelToken | None = None,
                       resume: bool = False, device: torch.device | str | None = None,
                       roi_size: Sequence[int] | None = None,
                       label_names: Sequence[str] | None = None,
                       sw_batch_size: int = 4) -> dict[str, Any]:
    """Search an architecture; returns the decoded genotype (``network.decode()``).

    Args:
        network: a ``SearchableNetwork``; moved to ``device``.
        train1 / train2: infinite iterators of ``{"image": [B,C,*p], "label": [B,1,*p]}`` with
            ``state_dict()`` / ``load_state_dict()`` (e.g. ``PatchLoader``).
        val_cases: preprocessed cases (``image`` [C,X,Y,Z], ``label`` [X,Y,Z]) for the
            sliding-window Dice every ``schedule.validate_every`` steps.
        checkpoint_dir: where ``checkpoint.pt`` is written (every ``checkpoint_every`` steps,
            on cancel, at the end).
        cancel: asked between steps; when set the loop checkpoints, emits ``cancelled`` and
            raises ``Cancelled``.
        resume: continue from ``checkpoint_dir/checkpoint.pt`` when it exists (a fresh start
            otherwise).
        roi_size: sliding-window size for validation (default: ``train1.patch_size``).
        label_names: class names, background first, for the ``validation`` events.

    Emits ``run_started``, ``step``, ``architecture`` (at step 0 and every ``snapshot_every``),
    ``validation``, ``checkpoint``, then ``finished`` with the genotype.
    """
    if not isinstance(schedule, SearchSchedule):
        schedule = build_config(SearchSchedule, schedule)
    reporter = reporter if reporter is not None else NullReporter()
    cancel = as_cancel_token(cancel)
    device = device if isinstance(device, torch.device) else select_device(device)
    amp = amp_enabled(schedule.amp, device)
    checkpoint_path = Path(checkpoint_dir) / ckpt.CHECKPOINT_NAME
    roi = tuple(int(v) for v in (roi_size if roi_size is not None else train1.patch_size))

    network.to(device)
    network.train()
    run = _Run(network, train1, train2, schedule, device, amp)
    resumed_from = restore_or_start(run, checkpoint_path, resume, reporter)
    total = schedule.total_steps
    reporter.emit(RUN_STARTED, phase="search", total_steps=total, device=describe_device(device),
                  amp=amp, resumed_from_step=resumed_from, schedule=config_to_dict(schedule),
                  n_weight_parameters=sum(p.numel() for p in run.weights),
                  n_arch_parameters=sum(p.numel() for p in run.arch))
    if resumed_from is None:
        reporter.emit(ARCHITECTURE, step=0, genotype=compact_genotype(network.snapshot()))

    while run.step < total:
        if cancel.is_cancelled():
            path = _checkpoint(run, reporter, checkpoint_path)
            reporter.emit(CANCELLED, step=run.step, checkpoint=str(path))
            raise Cancelled(run.step, str(path))
        started = time.perf_counter()
        index = run.step  # 0-based index of this step
        lr = schedule.lr(index)
        losses: dict[str, float] = {"seg": run.weight_step(lr)}
        lrs = {"weights": lr}
        if index >= schedule.search_start and run.a_opt is not None:
            t = index - schedule.search_start + 1
            ratio = t / max(1, schedule.search_steps)
            losses.update(run.arch_step(ratio))
            lrs["arch"] = schedule.arch_lr
            phase = "search"
        else:
            ratio = None
            phase = "warmup" if index < schedule.warmup_steps else "weights"
        run.step += 1
        memory, memory_kind = memory_usage(device)
        reporter.emit(STEP, step=run.step, total_steps=total, phase=phase, losses=losses,
                      lrs=lrs, reg_scale=ratio, memory_bytes=memory, memory_kind=memory_kind,
                      seconds=time.perf_counter() - started)
        if schedule.snapshot_every and run.step % schedule.snapshot_every == 0:
            reporter.emit(ARCHITECTURE, step=run.step,
                          genotype=compact_genotype(network.snapshot()))
        if schedule.validate_every and val_cases and (
                run.step % schedule.validate_every == 0 or run.step == total):
            dice, mean = evaluate_dice(network, val_cases, roi_size=roi, device=device,
                                       label_names=label_names, sw_batch_size=sw_batch_size,
                                       amp=amp)
            reporter.emit(VALIDATION, step=run.step, dice=dice, mean_dice=mean)
        if schedule.checkpoint_every and run.step % schedule.checkpoint_every == 0 \
                and run.step != total:
            _checkpoint(run, reporter, checkpoint_path)

    genotype = network.decode()
    if resumed_from != total:
        _checkpoint(run, reporter, checkpoint_path)
    reporter.emit(FINISHED, genotype=genotype)
    return genotype
