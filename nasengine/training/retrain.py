"""Retraining of a searched (discrete) architecture, then a model bundle.

Two training recipes (``RetrainConfig.recipe``), used by every retrain and by every method's
from-scratch candidate training (``train_from_scratch``):

- ``nnunet`` (the default; issue 12): nnU-Net's published recipe (Isensee et al. 2021):
  SGD with Nesterov momentum 0.99, lr 0.01 with poly decay (exponent 0.9) over all
  ``warmup_steps + steps`` steps (no warm-up), weight decay 3e-5; nnU-Net's augmentation
  with MONAI transforms (``nasengine.data.augment.nnunet_transforms``); Dice + CE with
  nnU-Net's soft Dice (not squared, batch Dice over the foreground classes). The
  ``lr_start``/``lr_peak``/``lr_milestones``/``lr_gamma``/``momentum``/``weight_decay``
  fields belong to the ``paper`` recipe; this one uses ``nnunet_lr``/``nnunet_momentum``/
  ``nnunet_weight_decay``/``poly_exponent``.
- ``paper``: the schedule shape of DiNTS Sec. 4.1 (the same as C2FNAS): SGD with momentum,
  linear warm-up ``lr_start -> lr_peak``, then ``steps`` iterations with the rate halved at
  milestones (paper: 1k warm-up, 40k steps, decay 0.5 at 8k/16k/24k/32k after warm-up),
  flips and quarter turns, DiNTS's squared-prediction Dice + CE. Each method's ``paper``
  retraining preset uses it.

Not taken from nnU-Net: deep supervision (a genotype's network has one output) and its
per-batch foreground rule (here each patch is centred on foreground with probability
``fg_oversample``, 0.33: the same share on average).
Resumable bit for bit like the search loop; cancellable between steps.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nasengine.config import ConfigError, config_to_dict, setting
from nasengine.device import describe_device, select_device
from nasengine.events import CancelToken, NullReporter, Reporter, as_cancel_token
from nasengine.events.types import FINISHED, VALIDATION
from nasengine.training import checkpoint as ckpt
from nasengine.training.common import amp_enabled, autocast, batch_to, evaluate_dice, make_scaler, seed_everything
from nasengine.training.loop_state import LoopState
from nasengine.training.losses import DiceCELoss
from nasengine.training.schedule import lr_at, poly_lr

#: ``RetrainConfig.recipe`` values (see the module docstring).
RECIPES = ("nnunet", "paper")

#: ``make_optimiser(params) -> optimiser`` (the loop sets its rate every step).
MakeOptimiser = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
#: ``loss_fn(logits [B,K,*p], label [B,1,*p]) -> scalar``.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@runtime_checkable
class TrainingData(Protocol):
    """What ``train_from_scratch`` reads from its ``data`` (``RetrainData`` has it all).

    ``train``: infinite, resumable iterator of ``{"image": float [B,C,*p], "label": long
    [B,1,*p]}``; ``val_cases``: preprocessed cases (``image`` [C,X,Y,Z], ``label`` [X,Y,Z]).
    Class names come from ``labels`` ({value: name}) or ``label_names`` (background first)
    when present.
    """

    train: Iterator[dict[str, torch.Tensor]]
    val_cases: Sequence[Any]


@dataclasses.dataclass
class RetrainConfig:
    """Training of a network from scratch: nnU-Net's recipe or a paper's (``recipe``)."""

    recipe: str = setting("nnunet", "Training recipe: nnunet (SGD Nesterov 0.99, lr 0.01 poly "
                          "decay, weight decay 3e-5, nnU-Net augmentation with MONAI, Dice+CE) "
                          "or paper (the method paper's warm-up/step-decay SGD, flips and "
                          "rotations)", choices=RECIPES)
    warmup_steps: int = setting(1000, "Warm-up steps (paper recipe: lr rising linearly; nnunet: "
                                "counted as ordinary steps)", minimum=0)
    steps: int = setting(40000, "Training steps after warm-up", minimum=1)
    lr_start: float = setting(0.025, "Paper recipe: SGD learning rate at the start of warm-up",
                              minimum=0.0)
    lr_peak: float = setting(0.2, "Paper recipe: SGD learning rate after warm-up", minimum=0.0)
    lr_milestones: tuple[int, ...] = setting((8000, 16000, 24000, 32000),
                                             "Paper recipe: steps after warm-up at which the "
                                             "rate decays", minimum=0)
    lr_gamma: float = setting(0.5, "Paper recipe: decay factor at each milestone", minimum=0.0,
                              maximum=1.0)
    momentum: float = setting(0.9, "Paper recipe: SGD momentum", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(4e-5, "Paper recipe: SGD weight decay", minimum=0.0)
    nnunet_lr: float = setting(0.01, "nnunet recipe: initial learning rate", minimum=0.0)
    nnunet_momentum: float = setting(0.99, "nnunet recipe: SGD Nesterov momentum", minimum=0.0,
                                     maximum=1.0)
    nnunet_weight_decay: float = setting(3e-5, "nnunet recipe: SGD weight decay", minimum=0.0)
    poly_exponent: float = setting(0.9, "nnunet recipe: exponent of the poly decay",
                                   minimum=0.0)
    batch_size: int = setting(2, "Patches per step", minimum=1)
    patch_size: tuple[int, int, int] | None = setting(
        None, "Training patch (voxels); null: from the dataset fingerprint", minimum=8,
        multiple_of=8)
    max_patch: int = setting(128, "Largest automatic patch edge", minimum=8, multiple_of=8)
    fg_oversample: float = setting(0.33, "Share of patches centred on foreground",
                                   minimum=0.0, maximum=1.0)
    val_fraction: float = setting(0.2, "Share of the non-test cases held out for validation "
                                  "(when no fold is chosen)", minimum=0.0, maximum=0.9)
    test_fraction: float | None = setting(
        None, "Share of the labelled cases held out as the test split, never trained or "
        "validated on; null: 0 when dataset.json lists labelled test cases (they are the test "
        "split), else 0.2", minimum=0.0, maximum=0.9)
    num_folds: int = setting(5, "k of the k-fold cross-validation over the non-test cases "
                             "(used when fold is set)", minimum=2, maximum=20)
    fold: int | None = setting(None, "Cross-validation fold to train (0-based; its cases "
                               "validate); null: a val_fraction split, no folds", minimum=0)
    validate_every: int = setting(1000, "Validation every N steps (0: only at the end)",
                                  minimum=0)
    checkpoint_every: int = setting(500, "Checkpoint every N steps (0: only on cancel/end)",
                                    minimum=0)
    sw_batch_size: int = setting(4, "Sliding-window patches per forward pass", minimum=1)
    amp: bool = setting(True, "Mixed precision (used on CUDA only)")
    seed: int = setting(0, "Random seed (initial weights, patches, split)", minimum=0)
    export: bool = setting(True, "Also export the network (torch.export .pt2 and ONNX)")

    def __post_init__(self) -> None:
        if self.fold is not None and self.fold >= self.num_folds:
            raise ConfigError(f"must be below num_folds ({self.num_folds}), got {self.fold}",
                              "fold")

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.steps

    def lr(self, step: int) -> float:
        """The rate of 0-based ``step`` under the recipe."""
        if self.recipe == "nnunet":
            return poly_lr(step, total_steps=self.total_steps, lr_initial=self.nnunet_lr,
                           exponent=self.poly_exponent)
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


#: Retraining presets shared by every method (a method may add or replace its own; the
#: ``default`` and ``cpu`` presets reach every method, see ``SearchMethod.retrain_presets_all``).
#:
#: - ``default``: what a retrain uses unless told otherwise: nnU-Net's recipe for 40k steps
#:   (the papers' retraining length, so that searched and paper runs get equal budgets).
#: - ``paper``: the method paper's own recipe (DiNTS Sec. 4.1 here; C2FNAS and DAST have
#:   their own ``paper`` presets).
#: - ``cpu``: nnU-Net's recipe sized for 2 CPU cores, about 15 minutes at 32^3 (issue 12
#:   item 6; pairs with the DiNTS search preset ``cpu``).
#: - ``small``: DEMO only: the paper schedule scaled to 1 %, to see a run through on a CPU.
#: - ``tiny``: TESTS only: a handful of steps; the model is not meant to segment.
RETRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "default": {"recipe": "nnunet", "warmup_steps": 0, "steps": 40000,
                "validate_every": 2000, "checkpoint_every": 500},
    "paper": {"recipe": "paper"},
    "cpu": {"recipe": "nnunet", "warmup_steps": 0, "steps": 800, "batch_size": 2,
            "patch_size": [32, 32, 32], "max_patch": 64, "validate_every": 200,
            "checkpoint_every": 100},
    "small": _scaled(0.01, recipe="paper", batch_size=2, max_patch=64),  # demo on a CPU
    "tiny": {"warmup_steps": 2, "steps": 4, "lr_milestones": [2, 3], "batch_size": 2,
             "patch_size": [32, 32, 32], "validate_every": 0, "checkpoint_every": 2,
             "sw_batch_size": 4},
}

#: One line per shared preset: what it is for (CLI listing, schema ``x-preset-descriptions``).
RETRAIN_PRESET_DESCRIPTIONS: dict[str, str] = {
    "default": "nnU-Net recipe (SGD Nesterov 0.99, lr 0.01 poly, MONAI augmentation), "
               "40k steps: the recommended retraining",
    "paper": "the method paper's own retraining recipe and length",
    "cpu": "nnU-Net recipe sized for 2 CPU cores: about 15 minutes at 32^3",
    "small": "DEMO ONLY: the paper schedule at 1% (410 steps) to see a run end on a CPU; "
             "not a usable model",
    "tiny": "TESTS ONLY: 6 steps; the model does not segment",
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


class RetrainState(LoopState):
    """State of one from-scratch training loop."""

    kind = "retrain"

    def __init__(self, network: nn.Module, train, config: RetrainConfig, *,
                 make_optimiser: MakeOptimiser | None, loss_fn: LossFn | None, **loop: Any):
        super().__init__(schedule=config, **loop)
        self.network, self.config = network, config
        self.train = recipe_batches(train, config)
        self.params = [p for p in network.parameters() if p.requires_grad]
        make = make_optimiser or default_optimiser(config)
        self.opt = make(self.params)
        self.scaler = make_scaler(self.device, self.amp)
        self.loss_fn = loss_fn if loss_fn is not None else default_loss(config)
        self.validation: dict[str, Any] = {"dice": {}, "mean_dice": None, "step": None}

    def components(self) -> dict[str, Any]:
        return {"network": self.network, "optimiser": self.opt, "scaler": self.scaler,
                "train": self.train}

    def extra_state(self) -> dict[str, Any]:
        return {"validation": self.validation}

    def restore_extra(self, state: dict[str, Any]) -> None:
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


def default_optimiser(config: RetrainConfig) -> MakeOptimiser:
    """The recipe's SGD: Nesterov momentum 0.99, weight decay 3e-5 (``nnunet``), or plain
    momentum and weight decay (``paper``: DiNTS / C2FNAS retraining)."""

    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if getattr(config, "recipe", "paper") == "nnunet":
            return torch.optim.SGD(params, lr=config.nnunet_lr, momentum=config.nnunet_momentum,
                                   weight_decay=config.nnunet_weight_decay, nesterov=True)
        return torch.optim.SGD(params, lr=config.lr_start, momentum=config.momentum,
                               weight_decay=config.weight_decay)

    return make


def default_loss(config: RetrainConfig) -> LossFn:
    """The recipe's Dice + CE: nnU-Net's soft Dice (``nnunet``) or DiNTS's squared Dice."""
    return DiceCELoss(squared_pred=getattr(config, "recipe", "paper") != "nnunet")


def recipe_batches(train: Iterator[dict[str, torch.Tensor]], config: RetrainConfig
                   ) -> Iterator[dict[str, torch.Tensor]]:
    """The training batches the recipe sees: under ``nnunet`` every sample goes through
    nnU-Net's MONAI augmentation (``AugmentedBatches``, resumable, seeded by
    ``config.seed``); a loader that already is augmented that way is passed through."""
    from nasengine.data.augment import AugmentedBatches

    if getattr(config, "recipe", "paper") != "nnunet" or isinstance(train, AugmentedBatches):
        return train
    return AugmentedBatches(train, seed=int(getattr(config, "seed", 0)) + 7919)


def _label_names(data: Any) -> list[str] | None:
    labels = getattr(data, "labels", None)
    if isinstance(labels, Mapping):
        return [labels[k] for k in sorted(labels)]
    names = getattr(data, "label_names", None)
    return list(names) if names is not None else None


def _roi_of(data: Any) -> tuple[int, ...]:
    plan = getattr(data, "plan", None)
    patch = getattr(plan, "patch_size", None) if plan is not None else None
    if patch is None:
        patch = getattr(data.train, "patch_size", None)
    if patch is None:
        raise ValueError("no roi_size given and neither data.plan nor data.train has a "
                         "patch_size")
    return tuple(int(v) for v in patch)


def train_from_scratch(network: nn.Module, data: TrainingData, config: RetrainConfig,
                       reporter: Reporter | None, checkpoint_dir: str | Path, *,
                       stage: str = ckpt.DEFAULT_STAGE, candidate: str | None = None,
                       cancel: CancelToken | None = None, resume: bool = False,
                       device: torch.device | str | None = None,
                       roi_size: Sequence[int] | None = None,
                       progress_span: tuple[float, float] = (0.0, 1.0),
                       make_optimiser: MakeOptimiser | None = None,
                       loss_fn: LossFn | None = None) -> dict[str, Any]:
    """Train any ``nn.Module`` from its current weights; the standalone trainer.

    Used by every retrain and callable by a method (C2FNAS trains each candidate with it,
    each in its own stage, e.g. ``stage="candidate-<hash>"``, ``candidate="<hash>"``).

    Args:
        network: ``[B,C,*p] -> logits [B,K,*p]``; moved to ``device``.
        data: has ``train`` (an infinite, resumable iterator of ``{"image", "label"}``
            batches, e.g. ``DataFactory.loader(...)``), ``val_cases`` (preprocessed cases)
            and ``labels`` ({value: name}) or ``label_names`` (background first); a
            ``RetrainData`` does.
        config: a ``RetrainConfig`` (or a method's subclass): schedule, validation and
            checkpoint intervals, AMP, sliding-window batch.
        reporter: the run's reporter (never rewound here).
        checkpoint_dir: the stage's checkpoint goes to ``checkpoint.stage_path(dir, stage)``.
        stage / candidate: carried by every event.
        resume: continue from the stage's checkpoint when it exists; a stage found complete
            returns its stored validation without emitting anything.
        roi_size: validation window (default: ``data.plan.patch_size`` or the loader's).
        progress_span: share ``(start, end)`` of the whole run this training covers.
        make_optimiser: ``params -> optimiser``; default the recipe's SGD
            (``default_optimiser``).
        loss_fn: ``(logits, label) -> scalar``; default the recipe's Dice + CE
            (``default_loss``). Under ``config.recipe == "nnunet"`` the batches of
            ``data.train`` also get nnU-Net's MONAI augmentation (``recipe_batches``).

    Returns:
        ``{"dice": {class: float | None}, "mean_dice": float | None, "step": int | None}`` of
        the last validation.

    Emits ``run_started``, ``step``, ``validation`` (every ``validate_every`` and at the end)
    and ``checkpoint``; on cancel it checkpoints, emits ``cancelled`` and raises ``Cancelled``.
    """
    reporter = reporter if reporter is not None else NullReporter()
    cancel = as_cancel_token(cancel)
    device = device if isinstance(device, torch.device) else select_device(device)
    amp = amp_enabled(config.amp, device)
    roi = tuple(int(v) for v in roi_size) if roi_size is not None else _roi_of(data)
    label_names = _label_names(data)
    val_cases = data.val_cases
    network.to(device).train()
    run = RetrainState(network, data.train, config, make_optimiser=make_optimiser,
                       loss_fn=loss_fn, reporter=reporter, checkpoint_dir=checkpoint_dir,
                       stage=stage, candidate=candidate, device=device, amp=amp,
                       progress_span=progress_span)
    total = run.total_steps
    run.begin(resume, phase="retrain", device=describe_device(device), amp=amp,
              schedule=config_to_dict(config), n_parameters=sum(p.numel() for p in run.params))

    def validate() -> None:
        dice, mean = evaluate_dice(network, val_cases, roi_size=roi, device=device,
                                   label_names=label_names, sw_batch_size=config.sw_batch_size,
                                   amp=amp)
        run.validation = {"dice": dice, "mean_dice": mean, "step": run.step}
        run.emit(VALIDATION, step=run.step, dice=dice, mean_dice=mean)

    while run.step < total:
        run.stop_if_cancelled(cancel)
        started = time.perf_counter()
        lr = run.lr(run.step)
        loss = run.train_step(lr)
        run.step += 1
        run.emit_step(phase="warmup" if run.step <= config.warmup_steps else "train",
                      losses={"seg": loss}, lrs={"weights": lr}, metrics=None,
                      seconds=time.perf_counter() - started)
        if val_cases and (run.step == total or (
                config.validate_every and run.step % config.validate_every == 0)):
            validate()
        if run.should_checkpoint(config.checkpoint_every):
            run.save_checkpoint()
    run.end(finished=False)
    return run.validation


def train_network(network: nn.Module, *, train, val_cases: Sequence[Any],
                  config: RetrainConfig, reporter: Reporter | None, checkpoint_dir: str | Path,
                  cancel: CancelToken | None = None, resume: bool = False,
                  device: torch.device | str | None = None, roi_size: Sequence[int],
                  label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The former retraining entry point: ``train_from_scratch`` on the default stage."""
    data = _LoopData(train=train, val_cases=val_cases,
                     label_names=list(label_names) if label_names is not None else None)
    return train_from_scratch(network, data, config, reporter, checkpoint_dir, cancel=cancel,
                              resume=resume, device=device, roi_size=roi_size)


@dataclasses.dataclass
class _LoopData:
    train: Any
    val_cases: Sequence[Any]
    label_names: list[str] | None = None


def retrain(genotype: dict[str, Any], data: RetrainData, config: RetrainConfig,
            reporter: Reporter | None, out_dir: str | Path, cancel: CancelToken | None = None,
            *, resume: bool = False, device: torch.device | str | None = None,
            network: nn.Module | None = None, stage: str = ckpt.DEFAULT_STAGE) -> Path:
    """Train the genotype's network from scratch and write a model bundle into ``out_dir``.

    Checkpoints go to ``out_dir/checkpoints`` (the ``stage`` file, ``checkpoint.pt`` by
    default). The network is built by the genotype's method
    (``nasengine.genotype.build_network`` for generic genotypes) after seeding torch with
    ``config.seed``. Emits ``finished`` with ``bundle`` (the directory), ``test_cases`` and
    ``fold`` (from ``data.source``; also top-level in ``bundle.json``). Returns ``out_dir``.
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
    result = train_from_scratch(network, data, config, reporter, out / "checkpoints",
                                stage=stage, cancel=cancel, resume=resume, device=device,
                                roi_size=patch)
    network.eval()
    test_cases = list(data.source.get("test_cases") or [])
    fold = data.source.get("fold")
    write_bundle(out, network=network, genotype=genotype, plan=data.plan, labels=data.labels,
                 channel_names=data.channel_names, dice=result.get("dice"),
                 mean_dice=result.get("mean_dice"),
                 source={**data.source, "retrain": config_to_dict(config),
                         "validated_at_step": result.get("step"),
                         "n_val_cases": len(data.val_cases)},
                 test_cases=test_cases, fold=fold)
    if config.export:
        example = torch.randn(1, data.in_channels, *patch)
        exports = export_network(network, example, out)
        update_bundle_info(out, exports=exports)
        network.to(device)
    reporter.emit(FINISHED, bundle=str(out), dice=result.get("dice"),
                  mean_dice=result.get("mean_dice"), test_cases=test_cases, fold=fold)
    return out
