"""Learning-rate schedule shape of DiNTS Sec. 4.1: linear warm-up, then multi-step decay."""
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
