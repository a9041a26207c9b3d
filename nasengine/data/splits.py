"""Deterministic case splits: test (held out), train/val or k-fold, and train1/train2 (halves
of train) for bi-level search.

The test split is chosen first, from all labelled cases, and never enters training or
validation (issue 12: evaluation on cases the model never saw). When ``dataset.json`` lists
labelled test cases (``"test": [{"image": ..., "label": ...}]``, an MSD archive's
``imagesTs/`` + ``labelsTs/``), those are the test split and ``test_fraction`` defaults to 0.
Folds (``num_folds``, ``fold``) partition the remaining cases as nnU-Net's 5-fold
cross-validation does: fold ``k`` validates, the others train.

The case ids are sorted before shuffling, so the split depends only on the set of ids and the
seed, not on the order files were listed or uploaded in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
        test: held-out training-list cases (``test_fraction``), disjoint from all above.
        fold / num_folds: the cross-validation fold of ``val`` (None: a ``val_fraction``
            split).
    """

    train: list[str]
    val: list[str]
    train1: list[str]
    train2: list[str]
    test: list[str] = field(default_factory=list)
    fold: int | None = None
    num_folds: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Splits:
        lists = {k: list(data[k]) for k in ("train", "val", "train1", "train2")}
        return cls(**lists, test=list(data.get("test") or []), fold=data.get("fold"),
                   num_folds=data.get("num_folds"))


def labelled_test_entries(root: str | Path) -> list[dict[str, str]]:
    """The labelled entries of ``dataset.json``'s ``test`` list: ``[{"id", "image",
    "label"}]`` with paths as written there (relative to the data dir, ``./`` dropped).
    Plain-string and unlabelled entries are skipped; a missing or unreadable file gives []."""
    try:
        description = json.loads((Path(root) / "dataset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = []
    for entry in (description.get("test") or []) if isinstance(description, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("image"), str) \
                and isinstance(entry.get("label"), str):
            image, label = (str(entry[k]).removeprefix("./") for k in ("image", "label"))
            name = Path(image).name
            case_id = name[:-7] if name.endswith(".nii.gz") else Path(name).stem
            entries.append({"id": case_id, "image": image, "label": label})
    return entries


def resolve_test_fraction(test_fraction: float | None, root: str | Path | None) -> float:
    """``test_fraction``, or its default: 0 when the dataset lists labelled test cases (they
    are the test split), else 0.2."""
    if test_fraction is not None:
        return float(test_fraction)
    return 0.0 if root is not None and labelled_test_entries(root) else 0.2


def hold_out_test(case_ids: Sequence[str], test_fraction: float, *, seed: int = 0
                  ) -> tuple[list[str], list[str]]:
    """``(rest, test)``: a seeded ``test_fraction`` of the sorted ids (rounded, at least 1
    when ``> 0``; at least 2 cases always remain for training and validation)."""
    ids = sorted(str(c) for c in case_ids)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be within [0, 1), got {test_fraction}")
    n_test = int(round(len(ids) * test_fraction))
    if test_fraction > 0:
        n_test = max(n_test, 1)
    n_test = max(0, min(n_test, len(ids) - 2))
    if test_fraction > 0 and n_test == 0:
        raise ValueError(f"{len(ids)} labelled case(s) are too few to hold out a test split "
                         f"(at least 3 are needed); set test_fraction to 0")
    # its own stream (seed + 1_000_003): the test split does not move when val_fraction does
    order = np.random.default_rng(seed + 1_000_003).permutation(len(ids))
    test = sorted(ids[i] for i in order[:n_test])
    rest = [c for c in ids if c not in set(test)]
    return rest, test


def fold_split(case_ids: Sequence[str], num_folds: int, fold: int, *, seed: int = 0
               ) -> tuple[list[str], list[str]]:
    """``(train, val)`` of fold ``fold`` of a seeded ``num_folds``-fold partition of the ids.

    Every id validates in exactly one fold; folds differ in size by at most one case.
    """
    ids = sorted(str(c) for c in case_ids)
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}")
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be within 0..{num_folds - 1}, got {fold}")
    if len(ids) < num_folds:
        raise ValueError(f"{num_folds} folds need at least {num_folds} cases, got {len(ids)}")
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    val = shuffled[fold::num_folds]
    chosen = set(val)
    return [c for c in shuffled if c not in chosen], val


def make_splits(case_ids: Sequence[str], *, val_fraction: float = 0.2, seed: int = 0,
                test_fraction: float = 0.0, num_folds: int | None = None,
                fold: int | None = None) -> Splits:
    """Split case ids deterministically.

    Args:
        case_ids: distinct case ids.
        val_fraction: share of cases for validation (rounded; at least 1 when ``> 0`` and there
            are at least 2 cases; at least 1 case always stays in train).
        seed: shuffling seed.
        test_fraction: share held out first as ``test`` (``hold_out_test``).
        num_folds / fold: when ``fold`` is given, ``val`` is that fold of a ``num_folds``-fold
            partition (default 5) of the non-test cases and ``val_fraction`` is unused.

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
    test: list[str] = []
    if test_fraction:
        ids, test = hold_out_test(ids, test_fraction, seed=seed)
    if fold is not None:
        num_folds = int(num_folds or 5)
        train, val = fold_split(ids, num_folds, int(fold), seed=seed)
    else:
        num_folds = None
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
    return Splits(train=train, val=val, train1=train1, train2=train2, test=test, fold=fold,
                  num_folds=num_folds)


def test_case_records(root: str | Path | None, test_ids: Sequence[str],
                      case_files: dict[str, tuple[Path, Path | None]]) -> list[dict[str, str]]:
    """The test split as ``[{"id", "image", "label"}]`` with paths relative to ``root``: the
    held-out training-list cases ``test_ids`` (files from ``case_files``: id -> (image,
    label)) followed by the labelled test cases ``dataset.json`` lists. Recorded in the
    retrain result and the model bundle, so an evaluation knows what the model never saw."""
    def relative(path: Path) -> str:
        if root is None:
            return str(path)
        try:
            return str(Path(path).resolve().relative_to(Path(root).resolve()))
        except ValueError:
            return str(path)

    records = []
    for case_id in sorted(test_ids):
        image, label = case_files[case_id]
        records.append({"id": case_id, "image": relative(image),
                        "label": relative(label) if label is not None else None})
    if root is not None:
        records += labelled_test_entries(root)
    return records
