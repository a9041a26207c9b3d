"""``DataFactory``: new patch loaders over any subset of a run's preprocessed cases.

A method that trains more than one network (C2FNAS trains candidates from scratch) or wants
its own weights/architecture split (SCNAS: 4:1) builds its loaders here instead of using the
two loaders ``api.search`` prepared.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from .preprocess import PreprocessedCase
from .sampling import PatchLoader

#: ``(weights share, architecture share)``; a number ``r`` means ``r:1``.
SplitRatio = tuple[float, float] | float


def _ratio_fraction(ratio: SplitRatio) -> Fraction:
    """Share of the first part as an exact fraction in (0, 1)."""
    if isinstance(ratio, (int, float)) and not isinstance(ratio, bool):
        a, b = Fraction(ratio).limit_denominator(10_000), Fraction(1)
    else:
        try:
            a, b = (Fraction(v).limit_denominator(10_000) for v in ratio)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"split ratio must be a number or a pair of numbers, got "
                             f"{ratio!r}") from None
    if a <= 0 or b <= 0:
        raise ValueError(f"split ratio parts must be positive, got {ratio!r}")
    return a / (a + b)


def split_ids(ids: Sequence[str], ratio: SplitRatio = (1, 1)) -> tuple[list[str], list[str]]:
    """Split ``ids`` (in their order) into two parts with sizes in ``ratio``.

    The first part gets ``round_half_up(n * a / (a + b))`` ids, at least 1 and at most
    ``n - 1`` when there are two or more; 1:1 gives ``ceil(n / 2)``, as ``make_splits`` does.
    With a single id both parts are that id (the only way both can be non-empty).
    """
    ids = list(ids)
    if not ids:
        raise ValueError("cannot split an empty list of cases")
    if len(ids) == 1:
        return list(ids), list(ids)
    share = _ratio_fraction(ratio)
    n = len(ids)
    first = int(n * share + Fraction(1, 2))  # round half up, exactly
    first = min(max(first, 1), n - 1)
    return ids[:first], ids[first:]


@dataclasses.dataclass
class DataFactory:
    """Loaders and validation cases over a run's preprocessed, labelled cases.

    Args:
        cases: case id -> ``PreprocessedCase`` (``image`` float32 [C,X,Y,Z], ``label``
            uint8 [X,Y,Z]).
        train_ids: training case ids (in the split's shuffled order).
        val_ids: validation case ids, disjoint from ``train_ids``.
        patch_size / batch_size / fg_oversample / seed: defaults of ``loader()``.
    """

    cases: Mapping[str, PreprocessedCase]
    train_ids: list[str]
    val_ids: list[str]
    patch_size: tuple[int, int, int]
    batch_size: int = 2
    fg_oversample: float = 0.33
    seed: int = 0

    def __post_init__(self) -> None:
        self.train_ids = list(self.train_ids)
        self.val_ids = list(self.val_ids)
        self.patch_size = tuple(int(v) for v in self.patch_size)  # type: ignore[assignment]
        missing = [i for i in self.train_ids + self.val_ids if i not in self.cases]
        if missing:
            raise ValueError(f"unknown case ids: {', '.join(missing[:5])}")
        if set(self.train_ids) & set(self.val_ids):
            raise ValueError("training and validation cases overlap")

    def _cases(self, case_ids: Sequence[str]) -> list[PreprocessedCase]:
        if isinstance(case_ids, str):
            raise TypeError("case_ids must be a list of ids, not one string")
        unknown = [i for i in case_ids if i not in self.cases]
        if unknown:
            raise KeyError(f"unknown case ids: {', '.join(unknown[:5])}")
        return [self.cases[i] for i in case_ids]

    def loader(self, case_ids: Sequence[str], *, patch_size: Sequence[int] | None = None,
               batch_size: int | None = None, seed: int | None = None, augment: bool = True,
               fg_oversample: float | None = None) -> PatchLoader:
        """A new, resumable ``PatchLoader`` over ``case_ids`` (any subset of the cases).

        Yields ``{"image": float32 [B,C,*patch], "label": int64 [B,1,*patch]}``; arguments
        left out take the factory's defaults. Two loaders with the same arguments draw the
        same batches.
        """
        return PatchLoader(self._cases(case_ids),
                           tuple(patch_size) if patch_size is not None else self.patch_size,
                           int(batch_size if batch_size is not None else self.batch_size),
                           fg_oversample=float(fg_oversample if fg_oversample is not None
                                               else self.fg_oversample),
                           augment=augment, seed=int(seed if seed is not None else self.seed))

    def val_cases(self, ids: Sequence[str] | None = None) -> list[PreprocessedCase]:
        """The preprocessed cases of ``ids`` (default: the validation cases)."""
        return self._cases(self.val_ids if ids is None else ids)

    def split(self, ratio: SplitRatio = (1, 1)) -> tuple[list[str], list[str]]:
        """The training ids split for weights and architecture, e.g. ``(4, 1)`` (SCNAS);
        1:1 (the default) equals ``Splits.train1`` / ``train2``."""
        return split_ids(self.train_ids, ratio)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (ids and loader defaults) for logs and ``splits.json``."""
        return {"train": list(self.train_ids), "val": list(self.val_ids),
                "patch_size": list(self.patch_size), "batch_size": self.batch_size,
                "fg_oversample": self.fg_oversample, "seed": self.seed}
