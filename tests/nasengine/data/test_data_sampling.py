"""Patch loader: batches, reproducibility, resume, foreground oversampling, augmentation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from nasengine.data import PatchLoader, PreprocessedCase, PreprocessMeta
from nasengine.data.augment import random_flip_rotate

_META = PreprocessMeta(
    original_shape=(1, 1, 1),
    original_affine=np.eye(4).tolist(),
    orientation=[[0, 1], [1, 1], [2, 1]],
    ras_shape=(1, 1, 1),
    ras_spacing=(1.0, 1.0, 1.0),
    ras_affine=np.eye(4).tolist(),
    resampled_shape=(1, 1, 1),
    label_ids=[0, 1, 2],
)


def _case(label, image=None, case_id="c"):
    if image is None:
        image = np.random.default_rng(0).normal(size=(1,) + label.shape).astype(np.float32)
    return PreprocessedCase(case_id=case_id, image=image, label=label.astype(np.uint8), meta=_META)


def _random_cases(n=3, shape=(20, 18, 16)):
    rng = np.random.default_rng(1)
    cases = []
    for index in range(n):
        label = np.zeros(shape, np.uint8)
        label[5:10, 5:12, 4:9] = 1
        label[7, 7, 6] = 2
        cases.append(_case(label, rng.normal(size=(2,) + shape).astype(np.float32), f"c{index}"))
    return cases


def test_batch_format():
    batch = next(PatchLoader(_random_cases(), (8, 8, 8), batch_size=3, seed=0))
    assert set(batch) == {"image", "label"}
    assert batch["image"].dtype == torch.float32 and batch["image"].shape == (3, 2, 8, 8, 8)
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (3, 1, 8, 8, 8)


def test_same_seed_same_batches_other_seed_other_batches():
    first = PatchLoader(_random_cases(), (8, 8, 8), batch_size=2, seed=7)
    second = PatchLoader(_random_cases(), (8, 8, 8), batch_size=2, seed=7)
    other = PatchLoader(_random_cases(), (8, 8, 8), batch_size=2, seed=8)
    a = [next(first) for _ in range(5)]
    b = [next(second) for _ in range(5)]
    c = [next(other) for _ in range(5)]
    assert all(torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["image"], z["image"]) for x, z in zip(a, c))


def test_resume_from_state_dict_draws_identical_batches():
    loader = PatchLoader(_random_cases(), (8, 8, 8), batch_size=2, seed=3)
    for _ in range(3):
        next(loader)
    buffer = io.BytesIO()
    torch.save(loader.state_dict(), buffer)  # what a checkpoint does
    expected = [next(loader) for _ in range(4)]
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = PatchLoader(_random_cases(), (8, 8, 8), batch_size=2, seed=999)  # seed comes from state
    resumed.load_state_dict(state)
    assert resumed.batches_drawn == 3
    for want in expected:
        got = next(resumed)
        assert torch.equal(got["image"], want["image"]) and torch.equal(got["label"], want["label"])


def _one_voxel_case():
    label = np.zeros((36, 36, 36), np.uint8)
    label[30, 4, 20] = 1  # a single foreground voxel
    return _case(label)


@pytest.mark.parametrize("fraction", [0.0, 0.33, 0.5, 1.0])  # 0.33: nnU-Net's rate
def test_foreground_oversampling_fraction(fraction):
    loader = PatchLoader([_one_voxel_case()], (6, 6, 6), batch_size=300, fg_oversample=fraction, augment=False, seed=0)
    labels = next(loader)["label"]
    with_foreground = (labels.flatten(1) > 0).any(dim=1).float().mean().item()
    # a random 6^3 crop of a 36^3 volume holds one given voxel with probability (6/31)^3 < 1%
    assert abs(with_foreground - fraction) < 0.1, with_foreground


def test_foreground_classes_are_drawn_uniformly():
    label = np.zeros((30, 30, 30), np.uint8)
    label[:, :, :15] = 1  # a huge class
    label[25, 25, 25] = 2  # and a one-voxel class
    loader = PatchLoader([_case(label)], (4, 4, 4), batch_size=200, fg_oversample=1.0, augment=False, seed=0)
    labels = next(loader)["label"]
    share_with_lesion = (labels.flatten(1) == 2).any(dim=1).float().mean().item()
    assert 0.35 < share_with_lesion < 0.65


def test_small_images_are_padded():
    label = np.ones((5, 6, 3), np.uint8)
    loader = PatchLoader([_case(label)], (8, 8, 8), batch_size=2, augment=False, seed=0)
    batch = next(loader)
    assert batch["image"].shape == (2, 1, 8, 8, 8)
    assert batch["label"].sum(dim=(1, 2, 3, 4)).tolist() == [5 * 6 * 3] * 2  # all of it, padded with 0


def _coordinate_case(shape=(14, 14, 10)):
    """Image channels = original x, y, z index; label = a function of position."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")).astype(np.float32)
    label = ((grid[0] + 2 * grid[1] + 3 * grid[2]) % 3).astype(np.uint8)
    return PreprocessedCase(case_id="xyz", image=grid, label=label, meta=_META), label


def test_augmentation_keeps_image_and_label_aligned_and_varies():
    case, original_label = _coordinate_case()
    loader = PatchLoader([case], (6, 6, 4), batch_size=64, fg_oversample=0.5, augment=True, seed=0)
    batch = next(loader)
    signatures = set()
    for image, label in zip(batch["image"].numpy(), batch["label"].numpy()):
        x, y, z = image.astype(np.int64)
        # every voxel's label is the original label at the voxel the image says it came from
        assert np.array_equal(label[0], original_label[x, y, z])
        # which original axis runs along each patch axis, and in which direction
        steps = tuple(tuple(int(np.sign(np.diff(channel, axis=axis).flat[0])) for channel in (x, y, z)) for axis in range(3))
        signatures.add(steps)
    assert len(signatures) >= 12  # flips on 3 axes x 4 rotations = 16 possible
    # z never mixes with x/y: rotations are in the x-y plane only
    assert all(s[2][2] != 0 and s[2][0] == s[2][1] == 0 for s in signatures)


def test_non_square_patches_only_rotate_by_180():
    case, _ = _coordinate_case()
    loader = PatchLoader([case], (6, 4, 4), batch_size=32, augment=True, seed=0)
    batch = next(loader)
    assert batch["image"].shape == (32, 3, 6, 4, 4)
    for image in batch["image"].numpy():
        x = image[0]
        assert np.diff(x, axis=1).max() == 0  # original x still runs along patch axis 0


def test_random_flip_rotate_is_a_permutation():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 4, 4, 3))
    label = rng.integers(0, 3, (4, 4, 3))
    out_image, out_label = random_flip_rotate(image, label, rng)
    assert np.array_equal(np.sort(out_image.ravel()), np.sort(image.ravel()))
    assert out_label.flags["C_CONTIGUOUS"] and out_image.flags["C_CONTIGUOUS"]


def test_bad_arguments():
    with pytest.raises(ValueError):
        PatchLoader([], (8, 8, 8), 1)
    with pytest.raises(ValueError):
        PatchLoader(_random_cases(1), (8, 8, 8), 1, fg_oversample=1.5)
    unlabelled = PreprocessedCase(case_id="u", image=np.zeros((1, 4, 4, 4), np.float32), label=None, meta=_META)
    with pytest.raises(ValueError, match="no label"):
        PatchLoader([unlabelled], (4, 4, 4), 1)
