"""nnU-Net's augmentation is MONAI's transforms and keeps image and label aligned."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from monai import transforms as mt

from nasengine.data import augment
from nasengine.data.augment import AugmentedBatches, nnunet_transforms


def test_the_augmentation_is_monai_with_every_nnunet_transform():
    kinds = {type(t) for t in nnunet_transforms(0).transforms}
    assert {mt.RandRotated, mt.RandZoomd, mt.RandGaussianNoised, mt.RandGaussianSmoothd,
            mt.RandScaleIntensityd, mt.RandScaleIntensityFixedMeand, mt.RandAdjustContrastd,
            mt.RandSimulateLowResolutiond, mt.RandFlipd} <= kinds


def _blob_label(shape=(32, 32, 32)) -> torch.Tensor:
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"))
    label = np.zeros(shape, np.int64)
    label[((grid - np.array([12, 14, 16])[:, None, None, None]) ** 2).sum(0) < 81] = 1
    label[((grid - np.array([22, 18, 14])[:, None, None, None]) ** 2).sum(0) < 25] = 2
    return torch.from_numpy(label)[None, None]


class _Once:
    """One fixed batch, forever."""

    def __init__(self, label: torch.Tensor):
        self.label = label

    def __next__(self):
        return {"image": self.label.float().clone(), "label": self.label.clone()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatial_augmentation_keeps_image_and_label_aligned(monkeypatch, seed):
    # every spatial transform on, no intensity change: the image is the label as floats, so
    # wherever the transforms moved the label, the image must have moved the same way
    for key in ("rotation_prob", "scale_prob"):
        monkeypatch.setitem(augment.NNUNET_AUGMENTATION, key, 1.0)
    for key in ("noise_prob", "blur_prob", "brightness_prob", "contrast_prob",
                "low_resolution_prob", "gamma_inverted_prob", "gamma_prob"):
        monkeypatch.setitem(augment.NNUNET_AUGMENTATION, key, 0.0)
    label = _blob_label()
    batches = AugmentedBatches(_Once(label), seed=seed)
    out = next(batches)
    assert out["label"].dtype == torch.int64 and out["label"].shape == label.shape
    assert set(out["label"].unique().tolist()) <= {0, 1, 2}
    moved = (out["label"] != label).float().mean().item()
    assert moved > 0.01, "the spatial transforms did not move anything"
    agreement = (out["image"].round().long() == out["label"]).float().mean().item()
    assert agreement > 0.97
    # the foreground voxels are where the image says they are
    fg = out["label"] > 0
    assert out["image"][fg].mean() > 0.8 and out["image"][~fg].mean() < 0.1


def test_intensity_augmentation_leaves_the_label_alone(monkeypatch):
    for key in ("rotation_prob", "scale_prob", "mirror_prob"):
        monkeypatch.setitem(augment.NNUNET_AUGMENTATION, key, 0.0)
    for key in ("noise_prob", "blur_prob", "brightness_prob", "gamma_prob"):
        monkeypatch.setitem(augment.NNUNET_AUGMENTATION, key, 1.0)
    label = _blob_label()
    out = next(AugmentedBatches(_Once(label), seed=4))
    assert torch.equal(out["label"], label)
    assert not torch.allclose(out["image"], label.float())
