"""Splits, and the demo dataset passing the whole pipeline."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pytest

from nasengine.data import (
    PatchLoader,
    Splits,
    check_dataset,
    compute_fingerprint,
    inspect_nifti,
    load_dataset,
    make_demo_data,
    make_plan,
    make_splits,
    preprocess_case,
    preprocess_image,
    restore_label,
)

IDS = [f"case_{i:02d}" for i in range(10)]


def test_splits_deterministic_disjoint_and_complete():
    splits = make_splits(IDS, val_fraction=0.2, seed=1)
    assert splits == make_splits(list(reversed(IDS)), val_fraction=0.2, seed=1)  # order of input irrelevant
    assert len(splits.val) == 2 and len(splits.train) == 8
    assert set(splits.train).isdisjoint(splits.val) and set(splits.train) | set(splits.val) == set(IDS)
    assert set(splits.train1).isdisjoint(splits.train2)
    assert sorted(splits.train1 + splits.train2) == sorted(splits.train)
    assert len(splits.train1) == len(splits.train2) == 4
    assert make_splits(IDS, val_fraction=0.2, seed=2) != splits
    assert Splits.from_dict(splits.to_dict()) == splits


@pytest.mark.parametrize("n, expected", [(1, (1, 0, 1, 1)), (2, (1, 1, 1, 1)), (3, (2, 1, 1, 1)), (4, (3, 1, 2, 1))])
def test_splits_with_tiny_datasets(n, expected):
    splits = make_splits(IDS[:n], val_fraction=0.2, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.train1), len(splits.train2)) == expected
    assert set(splits.train).isdisjoint(splits.val)
    if len(splits.train) >= 2:
        assert set(splits.train1).isdisjoint(splits.train2)


def test_splits_reject_bad_input():
    with pytest.raises(ValueError):
        make_splits([], val_fraction=0.2, seed=0)
    with pytest.raises(ValueError):
        make_splits(["a", "a"], val_fraction=0.2, seed=0)
    with pytest.raises(ValueError):
        make_splits(IDS, val_fraction=1.0, seed=0)
    assert make_splits(IDS, val_fraction=0.0, seed=0).val == []


def test_demo_data_goes_through_the_whole_pipeline(tmp_path):
    start = time.perf_counter()
    root = make_demo_data(tmp_path / "demo", n_cases=4, shape=(32, 28, 20), seed=0)
    assert time.perf_counter() - start < 3.0
    spec = load_dataset(root)
    assert spec.labels == {0: "background", 1: "organ", 2: "lesion"}
    assert spec.channel_names == ["MR"] and len(spec.cases) == 4 and len(spec.test_images) == 2
    assert check_dataset(spec) == []
    info = inspect_nifti(spec.cases[0].image)
    assert info.spacing == pytest.approx((1.0, 1.0, 1.5))
    assert not np.allclose(info.affine[:3, :3], np.diag(np.diag(np.abs(info.affine[:3, :3]))))  # flipped axes
    fingerprint = compute_fingerprint(spec)
    assert fingerprint["class_case_fractions"] == {"0": 1.0, "1": 1.0, "2": 1.0}  # both classes in every case
    plan = make_plan(fingerprint, divisor=8)
    assert plan.patch_size == (32, 24, 16) and plan.normalisation == [{"scheme": "zscore"}]
    processed = [preprocess_case(case, plan) for case in spec.cases]
    batch = next(PatchLoader(processed, plan.patch_size, batch_size=2, seed=0))
    assert batch["image"].shape == (2, 1, 32, 24, 16)
    image, meta = preprocess_image(spec.test_images[0], plan)
    restored = restore_label(np.zeros(image.shape[1:], np.uint8), meta)
    assert restored.shape == nib.load(str(spec.test_images[0])).shape
    # learnable: class means are well separated (organ between background and lesion)
    first = processed[0]
    means = [first.image[0][first.label == value].mean() for value in (0, 1, 2)]
    assert means[0] + 1.0 < means[1] < means[2] - 1.0


def test_demo_data_is_deterministic(tmp_path):
    a = load_dataset(make_demo_data(tmp_path / "a", n_cases=2, shape=(16, 16, 8), seed=3))
    b = load_dataset(make_demo_data(tmp_path / "b", n_cases=2, shape=(16, 16, 8), seed=3))
    for case_a, case_b in zip(a.cases, b.cases):
        assert np.array_equal(nib.load(str(case_a.image)).get_fdata(), nib.load(str(case_b.image)).get_fdata())
        assert np.array_equal(nib.load(str(case_a.label)).get_fdata(), nib.load(str(case_b.label)).get_fdata())
