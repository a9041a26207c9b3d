"""Retraining of a searched (discrete) architecture, then a model bundle.

Schedule shape of DiNTS Sec. 4.1 (the same as C2FNAS): SGD with momentum, linear warm-up
``lr_start -> lr_peak``, then ``steps`` iterations with the rate halved at milestones (paper:
1k warm-up, 40k steps, decay 0.5 at 8k/16k/24k/32k after warm-up). Presets scale it.
Resumable bit for bit like the search loop; cancellable between steps.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasengine.config import config_to_dict, setting
from nasengine.device import describe_device, select_device
from nasengine.events import Cancelled, CancelToken, NullReporter, Reporter, as_cancel_token
from nasengine.events.types import CANCELLED, CHECKPOINT, FINISHED, RUN_STARTED, STEP, VALIDATION
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import (amp_enabled, restore_or_start, autocast, batch_to, evaluate_dice,
                                       load_loader_state, loader_state, make_scaler,
                                       memory_usage, seed_everything)
from nasengine.training.losses import DiceCELoss
from nasengine.training.schedule import lr_at


@dataclasses.dataclass
class RetrainConfig:
    """Retraining of a searched architecture (DiNTS Sec. 4.1 schedule)."""

    warmup_steps: int = setting(1000, "Warm-up steps (lr rising linearly)", minimum=0)
    steps: int = setting(40000, "Training steps after warm-up", minimum=1)
    lr_start: float = setting(0.025, "SGD learning rate at the start of warm-up", minimum=0.0)
    lr_peak: float = setting(0.2, "SGD learning rate after warm-up", minimum=0.0)
    lr_milestones: tuple[int, ...] = setting((8000, 16000, 24000, 32000),
                                             "Steps after warm-up at which the rate decays",
                                             minimum=0)
    lr_gamma: float = setting(0.5, "Decay factor at each milestone", minimum=0.0, maximum=1.0)
    momentum: float = setting(0.9, "SGD momentum", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "SGD weight decay", minimum=0.0)
    batch_size: int = setting(2, "Patches per step", minimum=1)
    patch_size: tuple[int, int, int] | None = setting(
        None, "Training patch (voxels); null: from the dataset fingerprint", minimum=8,
        multiple_of=8)
    max_patch: int = setting(128, "Largest automatic patch edge", minimum=8, multiple_of=8)
    fg_oversample: float = setting(0.33, "Share of patches centred on foreground",
                                   minimum=0.0, maximum=1.0)
    val_fraction: float = setting(0.2, "Share of cases held out for validation",
                                  minimum=0.0, maximum=0.9)
    validate_every: int = setting(1000, "Validation every N steps (0: only at the end)",
                                  minimum=0)
    checkpoint_every: int = setting(500, "Checkpoint every N steps (0: only on cancel/end)",
                                    minimum=0)
    sw_batch_size: int = setting(4, "Sliding-window patches per forward pass", minimum=1)
    amp: bool = setting(True, "Mixed precision (used on CUDA only)")
    seed: int = setting(0, "Random seed (initial weights, patches, split)", minimum=0)
    export: bool = setting(True, "Also export the network (torch.export .pt2 and ONNX)")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.steps

    def lr(self, step: int) -> float:
        return lr_at(step, warmup_steps=self.warmup_steps, lr_start=self.lr_start,
                     lr_peak=self.lr_peak, milestones=self.lr_milestones, gamma=self.lr_gamma)


def _scaled(factor: float, **extra: Any) -> dict[str, Any]:
    """The paper schedule (1k + 40k, decays every 8k) scaled by ``factor``."""
    warmup = max(1, round(1000 * factor))
    steps = max(4, round(40000 * factor))
    return {"warmup_steps": warmup, "steps": steps,
            "lr_milestones": [round(8000 * factor * i) for i in (1, 2, 3, 4)],
            "validate_every": max(1, steps // 4), "checkpoint_every": max(1, steps // 8),
            **extra}


RETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": _scaled(0.01, batch_size=2, max_patch=64),  # 10 + 400 steps: demo on a CPU
    "tiny": {"warmup_steps": 2, "steps": 4, "lr_milestones": [2, 3], "batch_size": 2,
             "patch_size": [32, 32, 32], "validate_every": 0, "checkpoint_every": 2,
             "sw_batch_size": 4},
}


@dataclasses.dataclass
class RetrainData:
    """Data for retraining: ``train`` is an infinite ``PatchLoader``; ``val_cases``
    preprocessed cases; ``labels`` {label value: name} with background; ``source`` goes to
    bundle.json (dataset name, case ids, search run ...)."""

    plan: Any
    train: Iterator[dict[str, torch.Tensor]]
    val_cases: Sequence[Any]
    in_channels: int
    out_channels: int
    labels: dict[int, str]
    channel_names: list[str]
    source: dict[str, Any] = dataclasses.field(default_factory=dict)


class _Run:
    def __init__(self, network: nn.Module, train, config: RetrainConfig, device, amp):
        self.network, self.train, self.config = network, train, config
        self.device, self.amp = device, amp
        self.params = [p for p in network.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(self.params, lr=config.lr_start, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        self.scaler = make_scaler(device, amp)
        self.loss_fn = DiceCELoss()
        self.step = 0
        self.validation: dict[str, Any] = {"dice": {}, "mean_dice": None, "step": None}

    def state(self, reporter_seq: int) -> dict[str, Any]:
        return {"kind": "retrain", "step": self.step, "reporter_seq": reporter_seq,
                "network": self.network.state_dict(), "optimiser": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "train": loader_state(self.train),
                "rng": ckpt.capture_rng(), "validation": self.validation}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "retrain":
            raise ValueError("checkpoint is not a retraining checkpoint")
        self.network.load_state_dict(state["network"])
        self.opt.load_state_dict(state["optimiser"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        load_loader_state(self.train, state["train"])
        ckpt.restore_rng(state["rng"])
        self.step = int(state["step"])
        self.validation = dict(state.get("validation") or self.validation)

    def train_step(self, lr: float) -> float:
        for group in self.opt.param_groups:
            group["lr"] = lr
        image, label = batch_to(next(self.train), self.device)
        self.opt.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            logits = self.network(image)
        loss = self.loss_fn(logits, label)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return float(loss.detach())


def _checkpoint(run: _Run, reporter: Reporter, path: Path) -> Path:
    ckpt.save(path, run.state(reporter.seq + 1))
    reporter.emit(CHECKPOINT, step=run.step, path=str(path))
    return path


def train_network(network: nn.Module, *, train, val_cases: Sequence[Any],
                  config: RetrainConfig, reporter: Reporter | None, checkpoint_dir: str | Path,
                  cancel: CancelToken | None = None, resume: bool = False,
                  device: torch.device | str | None = None, roi_size: Sequence[int],
                  label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The retraining loop; returns ``{"dice", "mean_dice", "step"}`` of the last validation.

    Emits ``run_started``, ``step``, ``validation`` (every ``validate_every`` and at the end)
    and ``checkpoint``; on cancel it checkpoints, emits ``cancelled`` and raises ``Cancelled``.
    """
    reporter = reporter if reporter is not None else NullReporter()
    cancel = as_cancel_token(cancel)
    device = device if isinstance(device, torch.device) else select_device(device)
    amp = amp_enabled(config.amp, device)
    path = Path(checkpoint_dir) / ckpt.CHECKPOINT_NAME
    roi = tuple(int(v) for v in roi_size)
    network.to(device).train()
    run = _Run(network, train, config, device, amp)
    resumed_from = restore_or_start(run, path, resume, reporter)
    total = config.total_steps
    reporter.emit(RUN_STARTED, phase="retrain", total_steps=total,
                  device=describe_device(device), amp=amp, resumed_from_step=resumed_from,
                  schedule=config_to_dict(config),
                  n_parameters=sum(p.numel() for p in run.params))

    def validate() -> None:
        dice, mean = evaluate_dice(network, val_cases, roi_size=roi, device=device,
                                   label_names=label_names, sw_batch_size=config.sw_batch_size,
                                   amp=amp)
        run.validation = {"dice": dice, "mean_dice": mean, "step": run.step}
        reporter.emit(VALIDATION, step=run.step, dice=dice, mean_dice=mean)

    while run.step < total:
        if cancel.is_cancelled():
            saved = _checkpoint(run, reporter, path)
            reporter.emit(CANCELLED, step=run.step, checkpoint=str(saved))
            raise Cancelled(run.step, str(saved))
        started = time.perf_counter()
        lr = config.lr(run.step)
        loss = run.train_step(lr)
        run.step += 1
        memory, memory_kind = memory_usage(device)
        reporter.emit(STEP, step=run.step, total_steps=total,
                      phase="warmup" if run.step <= config.warmup_steps else "train",
                      losses={"seg": loss}, lrs={"weights": lr}, memory_bytes=memory,
                      memory_kind=memory_kind, seconds=time.perf_counter() - started)
        if val_cases and (run.step == total or (
                config.validate_every and run.step % config.validate_every == 0)):
            validate()
        if config.checkpoint_every and run.step % config.checkpoint_every == 0 \
                and run.step != total:
            _checkpoint(run, reporter, path)
    if resumed_from != total:
        _checkpoint(run, reporter, path)
    return run.validation


def retrain(genotype: dict[str, Any], data: RetrainData, config: RetrainConfig,
            reporter: Reporter | None, out_dir: str | Path, cancel: CancelToken | None = None,
            *, resume: bool = False, device: torch.device | str | None = None,
            network: nn.Module | None = None) -> Path:
    """Train the genotype's network from scratch and write a model bundle into ``out_dir``.

    Checkpoints go to ``out_dir/checkpoints``. The network is built by the genotype's method
    (``nasengine.genotype.build_network`` for generic genotypes) after seeding torch with
    ``config.seed``. Emits ``finished`` with ``bundle`` (the directory). Returns ``out_dir``.
    """
    from nasengine.inference.bundle import network_from_genotype, update_bundle_info, write_bundle
    from nasengine.inference.export import export_network

    reporter = reporter if reporter is not None else NullReporter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = device if isinstance(device, torch.device) else select_device(device)
    if network is None:
        seed_everything(config.seed)
        network = network_from_genotype(genotype)
    patch = tuple(int(v) for v in data.plan.patch_size)
    names = [data.labels[k] for k in sorted(data.labels)]
    result = train_network(network, train=data.train, val_cases=data.val_cases, config=config,
                           reporter=reporter, checkpoint_dir=out / "checkpoints", cancel=cancel,
                           resume=resume, device=device, roi_size=patch, label_names=names)
    network.eval()
    write_bundle(out, network=network, genotype=genotype, plan=data.plan, labels=data.labels,
                 channel_names=data.channel_names, dice=result.get("dice"),
                 mean_dice=result.get("mean_dice"),
                 source={**data.source, "retrain": config_to_dict(config),
                         "validated_at_step": result.get("step"),
                         "n_val_cases": len(data.val_cases)})
    if config.export:
        example = torch.randn(1, data.in_channels, *patch)
        exports = export_network(network, example, out)
        update_bundle_info(out, exports=exports)
        network.to(device)
    reporter.emit(FINISHED, bundle=str(out), dice=result.get("dice"),
                  mean_dice=result.get("mean_dice"))
    return out
