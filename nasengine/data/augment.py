"""Augmentation. ``random_flip_rotate``: the spatial augmentation of DiNTS/C2FNAS, random flips on all three axes and rotations by
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


# ----------------------------------------------------------------------------- nnU-Net recipe

#: nnU-Net's default data augmentation (Isensee et al., Nature Methods 2021, supplementary
#: "data augmentation"; nnunetv2 ``nnUNetTrainer.get_training_transforms``), expressed with
#: MONAI transforms. Probabilities are per sample, as nnU-Net's. Choices where MONAI differs:
#: rotation and scaling are applied to the patch itself with zero padding (nnU-Net transforms
#: a larger crop: cheaper here at 32^3 on a CPU, a little border padding at large angles);
#: nnU-Net's contrast augmentation is MONAI's fixed-mean intensity scaling; the inverted
#: gamma (p 0.1) and the plain gamma (p 0.3) are two gamma transforms.
NNUNET_AUGMENTATION: dict[str, float] = {
    "rotation_prob": 0.2, "rotation_degrees": 30.0,
    "scale_prob": 0.2, "scale_min": 0.7, "scale_max": 1.4,
    "noise_prob": 0.1, "noise_std": 0.1,
    "blur_prob": 0.2, "blur_sigma_min": 0.5, "blur_sigma_max": 1.0,
    "brightness_prob": 0.15, "brightness_range": 0.25,
    "contrast_prob": 0.15, "contrast_range": 0.25,
    "low_resolution_prob": 0.25,
    "gamma_inverted_prob": 0.1, "gamma_prob": 0.3, "gamma_min": 0.7, "gamma_max": 1.5,
    "mirror_prob": 0.5,
}


def nnunet_transforms(seed: int = 0, *, spatial: bool = True, intensity: bool = True):
    """nnU-Net's augmentation as a MONAI ``Compose`` over ``{"image": [C,*p], "label": [1,*p]}``.

    Spatial transforms move image (trilinear) and label (nearest) together, so they stay
    aligned; intensity transforms touch the image only. ``seed`` seeds every transform.
    """
    import math

    from monai import transforms as mt

    a = NNUNET_AUGMENTATION
    keys = ("image", "label")
    steps: list = []
    if spatial:
        angle = math.radians(a["rotation_degrees"])
        steps += [
            mt.RandRotated(keys, range_x=angle, range_y=angle, range_z=angle,
                           prob=a["rotation_prob"], mode=("bilinear", "nearest"),
                           padding_mode="zeros", keep_size=True),
            mt.RandZoomd(keys, prob=a["scale_prob"], min_zoom=a["scale_min"],
                         max_zoom=a["scale_max"], mode=("trilinear", "nearest"),
                         padding_mode="constant", keep_size=True),
        ]
    if intensity:
        steps += [
            mt.RandGaussianNoised("image", prob=a["noise_prob"], std=a["noise_std"]),
            mt.RandGaussianSmoothd("image", prob=a["blur_prob"],
                                   sigma_x=(a["blur_sigma_min"], a["blur_sigma_max"]),
                                   sigma_y=(a["blur_sigma_min"], a["blur_sigma_max"]),
                                   sigma_z=(a["blur_sigma_min"], a["blur_sigma_max"])),
            mt.RandScaleIntensityd("image", factors=a["brightness_range"],
                                   prob=a["brightness_prob"]),
            mt.RandScaleIntensityFixedMeand("image", factors=a["contrast_range"],
                                            preserve_range=True, prob=a["contrast_prob"]),
            mt.RandSimulateLowResolutiond("image", prob=a["low_resolution_prob"],
                                          zoom_range=(0.5, 1.0)),
            mt.RandAdjustContrastd("image", prob=a["gamma_inverted_prob"],
                                   gamma=(a["gamma_min"], a["gamma_max"]), invert_image=True,
                                   retain_stats=True),
            mt.RandAdjustContrastd("image", prob=a["gamma_prob"],
                                   gamma=(a["gamma_min"], a["gamma_max"]), retain_stats=True),
        ]
    if spatial:
        steps += [mt.RandFlipd(keys, prob=a["mirror_prob"], spatial_axis=axis)
                  for axis in (0, 1, 2)]
    compose = mt.Compose(steps, lazy=False)
    compose.set_random_state(seed=int(seed) % 2**32)
    return compose


def _random_states(compose) -> list:
    """Every ``numpy.random.RandomState`` the transforms draw from: each MONAI
    ``Randomizable``'s ``R``, including the array transforms a dict transform wraps."""
    from monai.transforms import Randomizable

    states, seen = [], set()
    for transform in compose.transforms:
        for part in (transform, *vars(transform).values()):
            if isinstance(part, Randomizable) and id(part.R) not in seen:
                seen.add(id(part.R))
                states.append(part.R)
    return states


def _plain(value):
    """A plain ``torch.Tensor`` (MONAI returns ``MetaTensor``s)."""
    import torch

    return value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)


class AugmentedBatches:
    """An infinite batch iterator with nnU-Net's MONAI augmentation applied per sample.

    Wraps any iterator of ``{"image": float [B,C,*p], "label": long [B,1,*p]}`` (a
    ``PatchLoader``); resumable like the loader: ``state_dict()`` holds the inner loader's
    state and every transform's generator state as plain lists (``weights_only``-safe).
    """

    def __init__(self, batches, seed: int = 0) -> None:
        self.batches = batches
        self.seed = int(seed)
        self.transforms = nnunet_transforms(self.seed)
        self.patch_size = getattr(batches, "patch_size", None)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        import torch

        batch = next(self.batches)
        images, labels = [], []
        for image, label in zip(batch["image"], batch["label"]):
            out = self.transforms({"image": image.float(), "label": label.float()})
            images.append(_plain(out["image"]).float())
            labels.append(_plain(out["label"]).round().long())
        return {"image": torch.stack(images).contiguous(),
                "label": torch.stack(labels).contiguous()}

    def state_dict(self) -> dict:
        inner = self.batches.state_dict() if hasattr(self.batches, "state_dict") else None
        rngs = []
        for rng in _random_states(self.transforms):
            kind, keys, pos, has_gauss, cached = rng.get_state()
            rngs.append([kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)])
        return {"loader": inner, "seed": self.seed, "rngs": rngs}

    def load_state_dict(self, state: dict) -> None:
        if state.get("loader") is not None and hasattr(self.batches, "load_state_dict"):
            self.batches.load_state_dict(state["loader"])
        for rng, saved in zip(_random_states(self.transforms), state.get("rngs", [])):
            kind, keys, pos, has_gauss, cached = saved
            rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
