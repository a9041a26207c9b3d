"""Training patches: random crops with foreground oversampling, padding, augmentation.

The loader owns one ``numpy.random.Generator``; every random choice (case, foreground or not,
position, augmentation) is drawn from it in a fixed order, so ``state_dict()`` (the generator's
bit-generator state, plain ints and strings, safe for ``torch.load(weights_only=True)``) is all
that is needed for a resumed run to draw exactly the same batches.

Foreground oversampling follows nnU-Net: with probability ``fg_oversample`` a patch is placed
around a random voxel of a random foreground class present in the case (classes drawn uniformly,
so small classes such as lesions are seen often), otherwise uniformly at random.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .augment import random_flip_rotate
from .preprocess import PreprocessedCase

#: Foreground voxel positions kept per class and case (a deterministic subsample).
MAX_LOCATIONS_PER_CLASS = 10_000


def pad_to_at_least(array: np.ndarray, shape_xyz: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Pad the last three axes symmetrically with zeros up to ``shape_xyz`` where smaller.

    Returns:
        (padded array, ``[3]`` offset of the original voxel (0,0,0) in the padded array).
    """
    spatial = np.array(array.shape[-3:])
    missing = np.maximum(np.asarray(shape_xyz) - spatial, 0)
    before = missing // 2
    if not missing.any():
        return array, before
    pad = [(0, 0)] * (array.ndim - 3) + [(int(b), int(m - b)) for b, m in zip(before, missing)]
    return np.pad(array, pad, mode="constant", constant_values=0), before


class _PaddedCase:
    def __init__(self, case: PreprocessedCase, patch_size: np.ndarray) -> None:
        if case.label is None:
            raise ValueError(f"case {case.case_id} has no label; training patches need one")
        self.case_id = case.case_id
        self.image, _ = pad_to_at_least(case.image, patch_size)
        self.label, _ = pad_to_at_least(case.label, patch_size)
        self.locations: dict[int, np.ndarray] = {}
        for value in np.unique(self.label):
            if value == 0:
                continue
            where = np.argwhere(self.label == value)
            if len(where) > MAX_LOCATIONS_PER_CLASS:  # evenly spaced subsample: deterministic
                where = where[np.linspace(0, len(where) - 1, MAX_LOCATIONS_PER_CLASS).astype(np.int64)]
            self.locations[int(value)] = where
        self.classes = sorted(self.locations)


class PatchLoader:
    """Infinite iterator of training batches.

    Args:
        cases: preprocessed labelled cases (``image`` ``[C, X, Y, Z]``, ``label`` ``[X, Y, Z]``).
        patch_size: ``(X, Y, Z)`` of every patch.
        batch_size: patches per batch.
        fg_oversample: probability that a patch is centred on a foreground voxel.
        augment: apply random flips and x-y rotations.
        seed: seed of the loader's generator.

    Yields:
        ``{"image": float32 [B, C, X, Y, Z], "label": int64 [B, 1, X, Y, Z]}`` (tensors only, so
        ``{k: v.to(device) for k, v in batch.items()}`` works); the cases the last batch came
        from are in ``last_case_ids``.
    """

    def __init__(
        self,
        cases: Sequence[PreprocessedCase],
        patch_size: Sequence[int],
        batch_size: int,
        *,
        fg_oversample: float = 0.33,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        if not cases:
            raise ValueError("PatchLoader needs at least one case")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= fg_oversample <= 1.0:
            raise ValueError(f"fg_oversample must be within [0, 1], got {fg_oversample}")
        self.patch_size = np.array([int(p) for p in patch_size], dtype=np.int64)
        if self.patch_size.shape != (3,) or (self.patch_size < 1).any():
            raise ValueError(f"patch_size must be three positive integers, got {patch_size!r}")
        self.batch_size = int(batch_size)
        self.fg_oversample = float(fg_oversample)
        self.augment = bool(augment)
        self.seed = int(seed)
        self._cases = [_PaddedCase(case, self.patch_size) for case in cases]
        self._rng = np.random.default_rng(self.seed)
        self.batches_drawn = 0
        self.last_case_ids: list[str] = []

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        return self.next_batch()

    def _corner(self, case: _PaddedCase, force_foreground: bool) -> np.ndarray:
        spatial = np.array(case.label.shape)
        highest = spatial - self.patch_size  # >= 0 thanks to padding
        if force_foreground and case.classes:
            value = case.classes[int(self._rng.integers(len(case.classes)))]
            locations = case.locations[value]
            centre = locations[int(self._rng.integers(len(locations)))]
            # Centre the patch on the voxel, shifted inwards at the borders (voxel stays inside).
            return np.clip(centre - self.patch_size // 2, 0, highest)
        return np.array([int(self._rng.integers(0, h + 1)) for h in highest])

    def sample_patch(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Draw one patch: (image ``[C, *patch]`` float32, label ``[*patch]`` uint8, case id)."""
        case = self._cases[int(self._rng.integers(len(self._cases)))]
        force_foreground = bool(self._rng.random() < self.fg_oversample)
        lo = self._corner(case, force_foreground)
        hi = lo + self.patch_size
        image = case.image[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        label = case.label[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        if self.augment:
            image, label = random_flip_rotate(
                image, label, self._rng, allow_quarter_turns=bool(self.patch_size[0] == self.patch_size[1])
            )
        return image, label, case.case_id

    def next_batch(self) -> dict:
        """Draw one batch (see class docstring)."""
        images, labels, case_ids = [], [], []
        for _ in range(self.batch_size):
            image, label, case_id = self.sample_patch()
            images.append(image)
            labels.append(label)
            case_ids.append(case_id)
        self.batches_drawn += 1
        self.last_case_ids = case_ids
        return {
            "image": torch.from_numpy(np.stack(images).astype(np.float32, copy=False)),
            "label": torch.from_numpy(np.stack(labels)[:, None].astype(np.int64)),
        }

    def state_dict(self) -> dict:
        """The loader's position: generator state and counters (plain ints/strings only)."""
        return {
            "seed": self.seed,
            "batches_drawn": self.batches_drawn,
            "bit_generator": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the loader that produced ``state`` was."""
        bit_generator = state["bit_generator"]
        if bit_generator.get("bit_generator") != type(self._rng.bit_generator).__name__:
            raise ValueError(f"state is for a {bit_generator.get('bit_generator')} generator")
        self._rng.bit_generator.state = bit_generator
        self.batches_drawn = int(state.get("batches_drawn", 0))
        self.seed = int(state.get("seed", self.seed))
