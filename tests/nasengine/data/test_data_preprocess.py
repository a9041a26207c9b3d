"""Preprocessing (RAS, resampling, normalisation) and its exact inverse."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from nasengine.data import (
    Case,
    DataError,
    Plan,
    PreprocessMeta,
    preprocess_case,
    preprocess_image,
    restore_channels,
    restore_label,
    write_nifti,
)

# Stored axis 0 -> world S (2.0 mm), axis 1 -> world R (0.5 mm), axis 2 -> world P (0.7 mm),
# plus a small rotation in the axial plane: non-identity, anisotropic, permuted and flipped.
_theta = np.deg2rad(10)
_rotation = np.array([[np.cos(_theta), -np.sin(_theta), 0], [np.sin(_theta), np.cos(_theta), 0], [0, 0, 1]])
_base = np.array([[0, 0.5, 0], [0, 0, -0.7], [2.0, 0, 0]])
AFFINE = np.eye(4)
AFFINE[:3, :3] = _rotation @ _base
AFFINE[:3, 3] = [-7.0, 12.0, -11.0]
SHAPE = (12, 30, 24)  # stored order; RAS order (30, 24, 12)


def _plan(target_spacing=(1.0, 1.0, 1.0), label_ids=(0, 1, 2), normalisation=None, channels=("MR",)):
    return Plan(
        target_spacing=tuple(target_spacing),
        patch_size=(16, 16, 16),
        divisor=16,
        median_shape=(16, 16, 16),
        normalisation=normalisation or [{"scheme": "zscore"}] * len(channels),
        label_ids=list(label_ids),
        label_names=[f"class{v}" for v in label_ids],
        channel_names=list(channels),
        modality=channels[0],
    )


def _world_ball_label(shape, affine, centre_mm, radius_mm, inner_radius_mm=None):
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    distance = np.linalg.norm(world - np.asarray(centre_mm), axis=1).reshape(shape)
    label = (distance <= radius_mm).astype(np.uint8)
    if inner_radius_mm:
        label[distance <= inner_radius_mm] = 2
    return label


def _write_case(tmp_path, write_nifti_file, label, image=None, affine=AFFINE, name="case"):
    if image is None:
        image = (label * 100.0 + np.random.default_rng(0).normal(0, 5, label.shape)).astype(np.float32)
    return Case(
        case_id=name,
        image=write_nifti_file(tmp_path / f"{name}_img.nii.gz", image, affine),
        label=write_nifti_file(tmp_path / f"{name}_seg.nii.gz", label, affine),
    )


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_round_trip_restores_shape_affine_and_content(tmp_path, write_nifti_file):
    centre = AFFINE[:3, :3] @ (np.array(SHAPE) / 2) + AFFINE[:3, 3]
    label = _world_ball_label(SHAPE, AFFINE, centre, 6.5, inner_radius_mm=3.0)
    case = _write_case(tmp_path, write_nifti_file, label)
    processed = preprocess_case(case, _plan())
    # RAS shape (30, 24, 12) at (0.5, 0.7, 2.0) mm -> (15, 17, 24) at 1 mm
    assert processed.image.shape == (1, 15, 17, 24) and processed.image.dtype == np.float32
    assert processed.label.shape == (15, 17, 24) and processed.label.dtype == np.uint8
    meta = PreprocessMeta.from_dict(json.loads(json.dumps(processed.meta.to_dict())))  # JSON-able
    restored = restore_label(processed.label, meta)
    assert restored.shape == SHAPE
    out = write_nifti(restored, meta.original_affine, tmp_path / "prediction.nii.gz")
    written, original = nib.load(str(out)), nib.load(str(case.image))
    assert written.shape == original.shape
    assert np.array_equal(written.affine, original.affine)
    assert np.array_equal(written.header.get_sform(), original.header.get_sform())
    for value in (1, 2):
        assert _dice(restored == value, label == value) > 0.8, value
    assert _dice(restored > 0, label > 0) > 0.9


def test_preprocessed_grid_is_ras_and_world_positions_are_kept(tmp_path, write_nifti_file):
    centre = AFFINE[:3, :3] @ np.array([4.0, 20.0, 8.0]) + AFFINE[:3, 3]
    label = _world_ball_label(SHAPE, AFFINE, centre, 5.0)
    processed = preprocess_case(_write_case(tmp_path, write_nifti_file, label), _plan())
    affine = processed.meta.resampled_affine
    # axes point R, A, S: the diagonal dominates and is positive
    assert all(affine[axis, axis] > 0 and abs(affine[axis, axis]) == np.abs(affine[:3, axis]).max() for axis in range(3))
    voxels = np.argwhere(processed.label == 1)
    centroid_world = affine[:3, :3] @ voxels.mean(axis=0) + affine[:3, 3]
    original_voxels = np.argwhere(label == 1)
    original_world = AFFINE[:3, :3] @ original_voxels.mean(axis=0) + AFFINE[:3, 3]
    assert np.linalg.norm(centroid_world - original_world) < 0.5


def test_round_trip_is_exact_without_resampling(tmp_path, write_nifti_file):
    label = np.random.default_rng(3).integers(0, 3, SHAPE).astype(np.uint8)
    case = _write_case(tmp_path, write_nifti_file, label)
    processed = preprocess_case(case, _plan(target_spacing=(0.5, 0.7, 2.0)))
    assert processed.label.shape == (30, 24, 12)
    assert np.array_equal(restore_label(processed.label, processed.meta), label)


def test_label_values_map_to_class_indices_and_back(tmp_path, write_nifti_file):
    label = np.random.default_rng(4).choice([0, 3, 7], size=SHAPE).astype(np.uint8)
    processed = preprocess_case(_write_case(tmp_path, write_nifti_file, label), _plan(target_spacing=(0.5, 0.7, 2.0), label_ids=(0, 3, 7)))
    assert set(np.unique(processed.label)) == {0, 1, 2}
    assert np.array_equal(restore_label(processed.label, processed.meta), label)


def test_restore_channels(tmp_path, write_nifti_file):
    label = np.zeros(SHAPE, np.uint8)
    label[4:8, 10:20, 8:16] = 1
    case = _write_case(tmp_path, write_nifti_file, label)
    processed = preprocess_case(case, _plan(label_ids=(0, 1)))
    one_hot = np.stack([processed.label == 0, processed.label == 1]).astype(np.float32)
    probabilities = restore_channels(one_hot, processed.meta)
    assert probabilities.shape == (2,) + SHAPE
    assert _dice(probabilities.argmax(0) == 1, label == 1) > 0.8
    with pytest.raises(ValueError, match="spatial shape"):
        restore_channels(one_hot[:, :-1], processed.meta)


def test_zscore_and_ct_normalisation(tmp_path, write_nifti_file):
    label = np.zeros(SHAPE, np.uint8)
    image = np.random.default_rng(5).normal(300, 50, SHAPE).astype(np.float32)
    case = _write_case(tmp_path, write_nifti_file, label, image=image)
    zscored = preprocess_case(case, _plan(target_spacing=(0.5, 0.7, 2.0))).image
    assert abs(zscored.mean()) < 1e-4 and abs(zscored.std() - 1) < 1e-4
    ct = [{"scheme": "ct", "clip_low": 250.0, "clip_high": 350.0, "mean": 300.0, "std": 25.0}]
    normalised = preprocess_case(case, _plan(target_spacing=(0.5, 0.7, 2.0), normalisation=ct, channels=("CT",))).image
    assert normalised.min() == pytest.approx(-2.0) and normalised.max() == pytest.approx(2.0)
    expected = (np.clip(image, 250, 350) - 300) / 25
    assert np.allclose(np.sort(normalised.ravel()), np.sort(expected.ravel()), atol=1e-5)


def test_preprocess_image_multichannel_and_channel_check(tmp_path, write_nifti_file):
    image = np.random.default_rng(6).normal(size=SHAPE + (2,)).astype(np.float32)
    path = write_nifti_file(tmp_path / "two.nii.gz", image, AFFINE)
    array, meta = preprocess_image(path, _plan(target_spacing=(0.5, 0.7, 2.0), channels=("T1", "T2")))
    assert array.shape == (2, 30, 24, 12)
    # channel 1 of the RAS array holds the stored channel 1, reoriented
    assert np.allclose(np.sort(array[1].ravel()), np.sort(((image[..., 1] - image[..., 1].mean()) / image[..., 1].std()).ravel()), atol=1e-4)
    with pytest.raises(DataError, match=r"^two\.nii\.gz: the image has 2 channel\(s\) but the dataset declares 1"):
        preprocess_image(path, _plan())


def test_restore_label_rejects_wrong_grid_or_classes(tmp_path, write_nifti_file):
    label = np.zeros(SHAPE, np.uint8)
    processed = preprocess_case(_write_case(tmp_path, write_nifti_file, label), _plan(label_ids=(0, 1)))
    with pytest.raises(ValueError, match="spatial shape"):
        restore_label(processed.label[:-1], processed.meta)
    with pytest.raises(ValueError, match="class indices"):
        restore_label(processed.label + 2, processed.meta)


def test_label_lookup_holds_the_class_map_and_one_slab_not_an_int64_copy():
    """Label values -> class indices slab by slab: a whole-volume fancy index would hold an
    8-byte index per voxel (8x the uint8 label map) on top of the output."""
    import tracemalloc

    from nasengine.data.checks import estimate_memory_bytes
    from nasengine.data.preprocess import LOOKUP_SLAB_VOXELS, label_classes

    shape = (160, 128, 128)
    label = np.random.default_rng(5).choice(np.array([0, 3, 7, 9], dtype=np.uint8), size=shape)
    tracemalloc.start()
    classes = label_classes(label, (0, 3, 7, 9))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert classes.dtype == np.uint8 and classes.shape == shape
    assert np.array_equal(classes, np.searchsorted(np.array([0, 3, 7, 9]), label))
    n = label.size
    assert peak <= n + 8 * LOOKUP_SLAB_VOXELS + (1 << 20), f"peak {peak} B for {n} voxels"
    assert peak < 2 * n
    assert estimate_memory_bytes(shape, 1, "label") == 3 * n
