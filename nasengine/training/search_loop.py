"""Bi-level differentiable search loop (DARTS / DiNTS Sec. 3.6 and 4.1), first order.

Phases over ``total_steps = warmup_steps + weight_only_steps + search_steps`` weight steps:

1. warm-up: weights only, learning rate rising linearly ``lr_start -> lr_peak``;
2. weights only at ``lr_peak`` (multi-step decay, milestones counted after warm-up);
3. search: each step is one weight step (``L_seg`` on *train1*) followed by one architecture
   step (``L_arch = L_seg + sum_k w_k * ramp_k(t) * R_k`` on *train2*) with the current weights
   (first order: no unrolled weight step), ``t = 1..t_all`` counting architecture steps.
   ``R_k`` are the network's raw ``arch_regularisers()``; the weights ``w_k`` and ramps
   (``constant`` or ``linear`` = t/t_all, DiNTS eq. 11) come from the schedule.

The optimisers (default: SGD for the weights, Adam for the architecture) and the loss
(default: ``DiceCELoss``) may be chosen by the method; an optional ``network.on_step(step,
phase)`` hook runs before each step (temperature schedules, pruning) and its numbers go into
the step event's ``metrics``.

The loop is resumable bit for bit: a checkpoint holds weights, architecture parameters and
buffers (a hook's state kept as a buffer, e.g. a temperature, is saved with them), both
optimisers, AMP scalers, the loaders' states, every RNG state, the step and the reporter's
``seq``. It writes its stage's checkpoint file (``checkpoint.pt`` for the default stage).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from nasengine.config import build_config, config_to_dict, setting
from nasengine.device import describe_device, select_device
from nasengine.events import CancelToken, NullReporter, Reporter, as_cancel_token
from nasengine.events.types import ARCHITECTURE, VALIDATION
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import amp_enabled, autocast, batch_to, compact_genotype, evaluate_dice, make_scaler
from nasengine.training.loop_state import LoopState
from nasengine.training.losses import DiceCELoss
from nasengine.training.schedule import lr_at

#: ``make_optimisers(weights, arch) -> (weight optimiser, arch optimiser or None)``.
MakeOptimisers = Callable[[list[nn.Parameter], list[nn.Parameter]],
                          tuple[torch.optim.Optimizer, "torch.optim.Optimizer | None"]]
#: ``loss_fn(logits [B,K,*p], label [B,1,*p]) -> scalar``.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

RAMPS = ("constant", "linear")
DEFAULT_TERM = "*"


def arch_entropy(network: nn.Module) -> dict[str, float] | None:
    """Mean normalised entropy (0: decided, 1: uniform) of the architecture weights.

    ``network.arch_entropy()`` when the network defines it; otherwise, for a lattice supernet
    (DiNTS) with ``edge_logits`` (sigmoid, one Bernoulli per edge) and ``op_logits``
    (softmax over ops per edge), ``{"edge": mean binary entropy / ln 2, "op": mean softmax
    entropy / ln N}``; None for networks with neither. Shows whether a search moved its
    architecture off the uniform start (issue 12: a short search that leaves the weights
    uniform decodes an arbitrary network).
    """
    own = getattr(network, "arch_entropy", None)
    if callable(own):
        return own()
    edge, op = getattr(network, "edge_logits", None), getattr(network, "op_logits", None)
    if not isinstance(edge, torch.Tensor) or not isinstance(op, torch.Tensor):
        return None
    with torch.no_grad():
        p = torch.sigmoid(edge.detach().double()).clamp(1e-12, 1 - 1e-12)
        h_edge = -(p * p.log() + (1 - p) * (1 - p).log()) / torch.log(torch.tensor(2.0))
        q = torch.softmax(op.detach().double(), dim=-1).clamp_min(1e-12)
        n = op.shape[-1]
        h_op = -(q * q.log()).sum(-1) / max(torch.log(torch.tensor(float(n))).item(), 1e-12)
    return {"edge": round(float(h_edge.mean()), 6), "op": round(float(h_op.mean()), 6)}


@runtime_checkable
class SearchableNetwork(Protocol):
    """What the loop needs from a supernet (an ``nn.Module``)."""

    def weight_parameters(self) -> Iterator[nn.Parameter]: ...
    def arch_parameters(self) -> Iterator[nn.Parameter]: ...
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...  # [B,C,*p] -> logits [B,K,*p]
    def arch_regularisers(self) -> dict[str, torch.Tensor]: ...  # raw terms, by name
    def snapshot(self) -> dict[str, Any]: ...  # continuous genotype
    def decode(self) -> dict[str, Any]: ...  # discrete genotype
    # optional: on_step(step: int, phase: str) -> dict[str, float] | None, called before each
    # step (0-based index of the step about to run; phase "warmup", "weights" or "search")


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
    regulariser_weights: dict[str, float] = setting(
        {}, "Weight of each architecture regulariser by name ('*': the default for terms not "
        "named; 1 when absent)", minimum=0.0)
    regulariser_ramps: dict[str, Literal["constant", "linear"]] = setting(
        {}, "Ramp of each regulariser by name ('*': the default): constant, or linear t/t_all "
        "over the architecture steps (DiNTS eq. 11); constant when absent")

    def __post_init__(self) -> None:
        for name, ramp in self.regulariser_ramps.items():
            if ramp not in RAMPS:
                raise ValueError(f"regulariser_ramps.{name}: must be one of "
                                 f"{', '.join(RAMPS)}, got {ramp!r}")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.weight_only_steps + self.search_steps

    def regulariser_scale(self, name: str, t: int) -> float:
        """``w * ramp(t)`` of regulariser ``name`` at the ``t``-th architecture step (1-based)."""
        weight = float(self.regulariser_weights.get(
            name, self.regulariser_weights.get(DEFAULT_TERM, 1.0)))
        ramp = self.regulariser_ramps.get(name, self.regulariser_ramps.get(DEFAULT_TERM,
                                                                           "constant"))
        return weight * (t / max(1, self.search_steps) if ramp == "linear" else 1.0)

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


def default_optimisers(schedule: SearchSchedule) -> MakeOptimisers:
    """SGD with momentum for the weights, Adam for the architecture (DiNTS Sec. 4.1)."""

    def make(weights: list[nn.Parameter], arch: list[nn.Parameter]):
        w_opt = torch.optim.SGD(weights, lr=schedule.lr_start, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
        a_opt = torch.optim.Adam(arch, lr=schedule.arch_lr,
                                 weight_decay=schedule.arch_weight_decay) if arch else None
        return w_opt, a_opt

    return make


def weighted_regularisers(regs: Mapping[str, torch.Tensor], schedule: SearchSchedule, t: int,
                          device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """``sum_k scale_k * R_k`` and ``{k: scale_k}``.

    Terms sharing a scale are summed first and multiplied once, so when every term has the
    same scale the result is bit for bit ``scale * sum(R)`` (the single-ramp loss of DiNTS).
    """
    scales = {name: schedule.regulariser_scale(name, t) for name in regs}
    groups: dict[float, torch.Tensor] = {}
    for name, value in regs.items():
        scale = scales[name]
        groups[scale] = groups.get(scale, torch.zeros((), device=device)) + value.float()
    total = torch.zeros((), device=device)
    for scale, group_sum in groups.items():
        total = total + scale * group_sum
    return total, scales


class SearchState(LoopState):
    """State of one bi-level search loop (kept together so checkpointing sees all of it)."""

    kind = "search"

    def __init__(self, network: nn.Module, train1, train2, schedule: SearchSchedule, *,
                 make_optimisers: MakeOptimisers | None, loss_fn: LossFn | None, **loop: Any):
        super().__init__(schedule=schedule, **loop)
        self.network, self.train1, self.train2 = network, train1, train2
        self.weights = list(network.weight_parameters())
        self.arch = list(network.arch_parameters())
        if not self.weights:
            raise ValueError("the network has no weight parameters")
        make = make_optimisers or default_optimisers(schedule)
        self.w_opt, self.a_opt = make(self.weights, self.arch)
        if not self.arch:
            self.a_opt = None
        self.w_scaler = make_scaler(self.device, self.amp)
        self.a_scaler = make_scaler(self.device, self.amp)
        self.loss_fn = loss_fn if loss_fn is not None else DiceCELoss()

    #: architecture-weight entropy before the first step (kept in the checkpoint, so a
    #: resumed run still reports where its search started)
    initial_entropy: dict[str, float] | None = None

    def extra_state(self) -> dict[str, Any]:
        return {"initial_entropy": self.initial_entropy}

    def restore_extra(self, state: dict[str, Any]) -> None:
        self.initial_entropy = state.get("initial_entropy")

    def components(self) -> dict[str, Any]:
        return {"network": self.network, "weight_optimiser": self.w_opt,
                "arch_optimiser": self.a_opt, "weight_scaler": self.w_scaler,
                "arch_scaler": self.a_scaler, "train1": self.train1, "train2": self.train2}

    def phase(self, index: int) -> str:
        s = self.schedule
        if index >= s.search_start and self.a_opt is not None:
            return "search"
        return "warmup" if index < s.warmup_steps else "weights"

    def weight_step(self, lr: float) -> float:
        _set_lr(self.w_opt, lr)
        image, label = batch_to(next(self.train1), self.device)
        with autocast(self.device, self.amp):
            logits = self.network(image)
        loss = self.loss_fn(logits, label)
        _grad_step(loss, self.weights, self.w_opt, self.w_scaler)
        return float(loss.detach())

    def arch_step(self, t: int) -> tuple[dict[str, float], dict[str, float]]:
        """One architecture step; returns (losses, regulariser scales)."""
        image, label = batch_to(next(self.train2), self.device)
        with autocast(self.device, self.amp):
            logits = self.network(image)
        seg = self.loss_fn(logits, label)
        regs = dict(self.network.arch_regularisers())
        reg_total, scales = weighted_regularisers(regs, self.schedule, t, self.device)
        loss = seg + reg_total
        _grad_step(loss, self.arch, self.a_opt, self.a_scaler)
        out = {"arch": float(loss.detach()), "arch_seg": float(seg.detach())}
        out.update({f"reg_{k}": float(v.detach()) for k, v in regs.items()})
        return out, scales


def _hook_metrics(network: nn.Module, index: int, phase: str) -> dict[str, Any]:
    hook = getattr(network, "on_step", None)
    if not callable(hook):
        return {}
    result = hook(index, phase)
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TypeError(f"{type(network).__name__}.on_step must return a dict or None, "
                        f"got {type(result).__name__}")
    return dict(result)


def run_bilevel_search(network: nn.Module, *, train1: Iterator[dict[str, torch.Tensor]],
                       train2: Iterator[dict[str, torch.Tensor]], val_cases: Sequence[Any],
                       schedule: SearchSchedule | Mapping[str, Any],
                       reporter: Reporter | None = None,
                       checkpoint_dir: str | Path, cancel: CancelToken | None = None,
                       resume: bool = False, device: torch.device | str | None = None,
                       roi_size: Sequence[int] | None = None,
                       label_names: Sequence[str] | None = None,
                       sw_batch_size: int = 4, stage: str = ckpt.DEFAULT_STAGE,
                       candidate: str | None = None,
                       progress_span: tuple[float, float] = (0.0, 1.0),
                       emit_finished: bool = True,
                       make_optimisers: MakeOptimisers | None = None,
                       loss_fn: LossFn | None = None) -> dict[str, Any]:
    """Search an architecture; returns the decoded genotype (``network.decode()``).

    Args:
        network: a ``SearchableNetwork``; moved to ``device``.
        train1 / train2: infinite iterators of ``{"image": [B,C,*p], "label": [B,1,*p]}`` with
            ``state_dict()`` / ``load_state_dict()`` (e.g. ``PatchLoader``).
        val_cases: preprocessed cases (``image`` [C,X,Y,Z], ``label`` [X,Y,Z]) for the
            sliding-window Dice every ``schedule.validate_every`` steps.
        reporter: the run's reporter; the loop never rewinds it.
        checkpoint_dir: where the stage's checkpoint is written (every ``checkpoint_every``
            steps, on cancel, at the end): ``checkpoint.pt`` for ``main``, else
            ``<stage>.pt``.
        cancel: asked between steps; when set the loop checkpoints, emits ``cancelled`` and
            raises ``Cancelled``.
        resume: continue from the stage's checkpoint when it exists (a fresh start
            otherwise). A stage found complete emits nothing but, with ``emit_finished``,
            ``finished``.
        roi_size: sliding-window size for validation (default: ``train1.patch_size``).
        label_names: class names, background first, for the ``validation`` events.
        stage / candidate: carried by every event (``stage`` also names the checkpoint).
        progress_span: the share ``(start, end)`` of the whole run this loop covers.
        emit_finished: emit ``finished`` with the genotype at the end (False when another
            stage follows).
        make_optimisers: ``(weights, arch) -> (weight optimiser, arch optimiser | None)``;
            default SGD + Adam from the schedule. The loop sets the weight optimiser's rate
            from ``schedule.lr(step)`` before every weight step.
        loss_fn: ``(logits, label) -> scalar``; default ``DiceCELoss()``.

    Emits ``run_started``, ``step`` (with ``metrics`` from ``network.on_step`` and
    ``reg_scales``), ``architecture`` (at step 0 and every ``snapshot_every``),
    ``validation``, ``checkpoint``, then ``finished`` with the genotype.
    """
    if not isinstance(schedule, SearchSchedule):
        schedule = build_config(SearchSchedule, schedule)
    reporter = reporter if reporter is not None else NullReporter()
    cancel = as_cancel_token(cancel)
    device = device if isinstance(device, torch.device) else select_device(device)
    amp = amp_enabled(schedule.amp, device)
    roi = tuple(int(v) for v in (roi_size if roi_size is not None else train1.patch_size))

    network.to(device)
    network.train()
    run = SearchState(network, train1, train2, schedule, make_optimisers=make_optimisers,
                      loss_fn=loss_fn, reporter=reporter, checkpoint_dir=checkpoint_dir,
                      stage=stage, candidate=candidate, device=device, amp=amp,
                      progress_span=progress_span)
    total = run.total_steps
    if run.begin(resume, phase="search", device=describe_device(device), amp=amp,
                 schedule=config_to_dict(schedule),
                 n_weight_parameters=sum(p.numel() for p in run.weights),
                 n_arch_parameters=sum(p.numel() for p in run.arch)) \
            and run.resumed_from is None:
        run.emit(ARCHITECTURE, step=0, genotype=compact_genotype(network.snapshot()),
                 **_entropy_field(network))
    if run.resumed_from is None:
        run.initial_entropy = arch_entropy(network)

    while run.step < total:
        run.stop_if_cancelled(cancel)
        started = time.perf_counter()
        index = run.step  # 0-based index of this step
        phase = run.phase(index)
        metrics = _hook_metrics(network, index, phase)
        lr = run.lr(index)
        losses: dict[str, float] = {"seg": run.weight_step(lr)}
        lrs = {"weights": lr}
        scales: dict[str, float] | None = None
        if phase == "search":
            arch_losses, scales = run.arch_step(index - schedule.search_start + 1)
            losses.update(arch_losses)
            lrs["arch"] = float(run.a_opt.param_groups[0]["lr"])
        run.step += 1
        run.emit_step(phase=phase, losses=losses, lrs=lrs, metrics=metrics,
                      seconds=time.perf_counter() - started, reg_scales=scales)
        if schedule.snapshot_every and run.step % schedule.snapshot_every == 0:
            run.emit(ARCHITECTURE, step=run.step, genotype=compact_genotype(network.snapshot()),
                     **_entropy_field(network))
        if schedule.validate_every and val_cases and (
                run.step % schedule.validate_every == 0 or run.step == total):
            dice, mean = evaluate_dice(network, val_cases, roi_size=roi, device=device,
                                       label_names=label_names, sw_batch_size=sw_batch_size,
                                       amp=amp)
            run.emit(VALIDATION, step=run.step, dice=dice, mean_dice=mean)
        if run.should_checkpoint(schedule.checkpoint_every):
            run.save_checkpoint()

    genotype = network.decode()
    final_entropy = arch_entropy(network)
    extra = {} if final_entropy is None else {
        "arch_entropy": {"initial": run.initial_entropy, "final": final_entropy}}
    run.end(finished=emit_finished, genotype=genotype, **extra)
    return genotype


def _entropy_field(network: nn.Module) -> dict[str, Any]:
    entropy = arch_entropy(network)
    return {} if entropy is None else {"arch_entropy": entropy}
