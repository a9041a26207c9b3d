"""Learning-rate schedules: DiNTS Sec. 4.1 (linear warm-up, multi-step decay) and nnU-Net's poly decay."""
from __future__ import annotations

from collections.abc import Sequence


def lr_at(step: int, *, warmup_steps: int, lr_start: float, lr_peak: float,
          milestones: Sequence[int], gamma: float) -> float:
    """Learning rate for 0-based ``step``.

    During warm-up the rate rises linearly from ``lr_start`` (step 0) towards ``lr_peak``
    (reached at step ``warmup_steps``). Afterwards it is ``lr_peak * gamma ** k`` where ``k`` is
    the number of ``milestones`` (counted in steps after warm-up) already passed.
    """
    if step < warmup_steps:
        return lr_start + (lr_peak - lr_start) * step / warmup_steps
    after = step - warmup_steps
    passed = sum(1 for m in milestones if after >= m)
    return lr_peak * gamma ** passed


def poly_lr(step: int, *, total_steps: int, lr_initial: float, exponent: float = 0.9) -> float:
    """nnU-Net's poly decay: ``lr_initial * (1 - step / total_steps) ** exponent``.

    ``step`` is 0-based, so step 0 trains at ``lr_initial`` and the rate approaches 0 at the
    last step (it is never negative; steps past the end keep 0).
    """
    if total_steps <= 0:
        return lr_initial
    fraction = min(max(step, 0) / total_steps, 1.0)
    return lr_initial * (1.0 - fraction) ** exponent
