"""Spatial augmentation of DiNTS/C2FNAS: random flips on all three axes and rotations by
0/90/180/270 degrees in the x-y plane. These are exact voxel permutations (no interpolation), so
image and label stay aligned voxel for voxel and labels stay valid class indices.
"""

from __future__ import annotations

import numpy as np


def random_flip_rotate(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, *, allow_quarter_turns: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the same random flips and x-y rotation to an image and its label.

    Args:
        image: ``[C, X, Y, Z]``.
        label: ``[X, Y, Z]``.
        rng: the random source (draws 4 numbers: 3 flips, 1 rotation).
        allow_quarter_turns: 90/270 degree turns swap X and Y, so they are only allowed when the
            patch is square in x-y; otherwise only 0/180 are drawn.

    Returns:
        (image, label), contiguous copies.
    """
    flips = rng.random(3) < 0.5
    turns = int(rng.integers(0, 4)) if allow_quarter_turns else 2 * int(rng.integers(0, 2))
    for axis in range(3):
        if flips[axis]:
            image = np.flip(image, axis=axis + 1)
            label = np.flip(label, axis=axis)
    if turns:
        image = np.rot90(image, k=turns, axes=(1, 2))
        label = np.rot90(label, k=turns, axes=(0, 1))
    return np.ascontiguousarray(image), np.ascontiguousarray(label)
