"""Deterministic case splits: train/val, and train1/train2 (halves of train) for bi-level search.

The case ids are sorted before shuffling, so the split depends only on the set of ids and the
seed, not on the order files were listed or uploaded in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Splits:
    """Case-id lists.

    Attributes:
        train: training cases (weights, and retraining).
        val: validation cases; disjoint from ``train``.
        train1: first half of ``train`` (bi-level search: network weights).
        train2: second half of ``train`` (bi-level search: architecture parameters). Disjoint
            from ``train1`` whenever ``train`` has at least 2 cases; with a single training case
            both halves are that case (the only way both can be non-empty).
    """

    train: list[str]
    val: list[str]
    train1: list[str]
    train2: list[str]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Splits:
        return cls(**{k: list(data[k]) for k in ("train", "val", "train1", "train2")})


def make_splits(case_ids: Sequence[str], *, val_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Split case ids deterministically.

    Args:
        case_ids: distinct case ids.
        val_fraction: share of cases for validation (rounded; at least 1 when ``> 0`` and there
            are at least 2 cases; at least 1 case always stays in train).
        seed: shuffling seed.

    Returns:
        Splits (each list in shuffled order).

    Raises:
        ValueError: no cases, duplicate ids, ``val_fraction`` outside ``[0, 1)``.
    """
    ids = sorted(str(c) for c in case_ids)
    if not ids:
        raise ValueError("cannot split an empty list of cases")
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be distinct")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be within [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    n_val = int(round(len(ids) * val_fraction))
    if val_fraction > 0 and len(ids) >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, len(ids) - 1)
    val, train = shuffled[:n_val], shuffled[n_val:]
    if len(train) >= 2:
        half = (len(train) + 1) // 2
        train1, train2 = train[:half], train[half:]
    else:
        train1, train2 = list(train), list(train)
    return Splits(train=train, val=val, train1=train1, train2=train2)
