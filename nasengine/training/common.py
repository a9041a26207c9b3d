"""Pieces shared by the search and retraining loops: AMP, memory (and its CUDA peak reset),
validation, genotype size. Resume and checkpoint plumbing is in ``loop_state``."""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nasengine.events.reporter import plain


def amp_enabled(requested: bool, device: torch.device) -> bool:
    """Mixed precision only on CUDA, whatever was requested."""
    return bool(requested) and device.type == "cuda"


def autocast(device: torch.device, enabled: bool):
    """``torch.autocast`` (fp16) when enabled, else a null context (no CPU autocast)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16)


def make_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda" if device.type == "cuda" else "cpu", enabled=enabled)


def memory_usage(device: torch.device) -> tuple[int, str]:
    """(bytes, kind): peak CUDA memory allocated on CUDA, resident set size on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    try:
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().rss), "rss"
    except ImportError:  # pragma: no cover - psutil is normally present
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "max_rss"


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh CUDA peak for this loop (a long-lived worker would otherwise report an
    earlier run's peak); nothing on other devices."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def batch_to(batch: dict[str, torch.Tensor], device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(image [B,C,X,Y,Z] float, label [B,1,X,Y,Z] long) on ``device``."""
    image = batch["image"].to(device, non_blocking=True).float()
    label = batch["label"].to(device, non_blocking=True).long()
    return image, label


def compact_genotype(doc: dict[str, Any], ndigits: int = 4) -> dict[str, Any]:
    """A JSON-able copy of a genotype with floats rounded (keeps ``architecture`` events small)."""
    return plain(doc, ndigits)


def dice_scores(pred: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor,
                num_classes: int) -> list[float | None]:
    """Dice of each foreground class 1..K-1 for one case (None where both are empty)."""
    pred_t = torch.as_tensor(pred).reshape(-1).long()
    label_t = torch.as_tensor(label).reshape(-1).long()
    scores: list[float | None] = []
    for c in range(1, num_classes):
        p, g = pred_t == c, label_t == c
        denom = int(p.sum()) + int(g.sum())
        scores.append(None if denom == 0 else 2.0 * int((p & g).sum()) / denom)
    return scores


@torch.no_grad()
def evaluate_dice(network: nn.Module, cases: Iterable[Any], *, roi_size: Sequence[int],
                  device: torch.device, label_names: Sequence[str] | None = None,
                  sw_batch_size: int = 4, overlap: float = 0.5, amp: bool = False
                  ) -> tuple[dict[str, float | None], float | None]:
    """Sliding-window (Gaussian) Dice per foreground class over preprocessed cases.

    ``cases`` hold ``image`` float32 [C,X,Y,Z] and ``label`` [X,Y,Z]. Returns
    (``{class name: mean Dice over cases or None}``, mean over classes or None).
    """
    from monai.inferers import sliding_window_inference

    was_training = network.training
    network.eval()
    per_class: list[list[float]] | None = None
    num_classes = None
    try:
        for case in cases:
            if case.label is None:
                continue
            x = torch.from_numpy(np.ascontiguousarray(case.image))[None].to(device).float()
            with autocast(device, amp):
                logits = sliding_window_inference(x, roi_size=tuple(roi_size),
                                                  sw_batch_size=sw_batch_size,
                                                  predictor=network, overlap=overlap,
                                                  mode="gaussian")
            num_classes = int(logits.shape[1])
            pred = logits.argmax(1)[0].cpu()
            scores = dice_scores(pred, np.asarray(case.label), num_classes)
            if per_class is None:
                per_class = [[] for _ in scores]
            for bucket, s in zip(per_class, scores):
                if s is not None:
                    bucket.append(s)
    finally:
        network.train(was_training)
    if per_class is None:
        return {}, None
    names = list(label_names) if label_names is not None else []
    if len(names) == len(per_class) + 1:  # background included
        names = names[1:]
    if len(names) != len(per_class):
        names = [f"class_{c}" for c in range(1, len(per_class) + 1)]
    dice = {n: (float(np.mean(b)) if b else None) for n, b in zip(names, per_class)}
    defined = [v for v in dice.values() if v is not None]
    mean = float(np.mean(defined)) if defined else None
    if mean is not None and math.isnan(mean):
        mean = None
    return dice, mean


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global RNG and python's ``random``."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
