"""Splits, and the demo dataset passing the whole pipeline."""

from __future__ import annotations

import json
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


# ----------------------------------------------------------------------------- test split, folds

def test_test_split_is_held_out_first_and_never_trained_or_validated():
    from nasengine.data.splits import make_splits

    ids = [f"case_{i:02d}" for i in range(20)]
    s = make_splits(ids, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert len(s.test) == 4 and len(s.val) == 3 and len(s.train) == 13
    assert not set(s.test) & (set(s.train) | set(s.val))
    assert set(s.test) | set(s.train) | set(s.val) == set(ids)
    # the test split depends on the ids, the seed and its fraction only
    assert make_splits(ids, val_fraction=0.4, test_fraction=0.2, seed=3).test == s.test
    assert make_splits(list(reversed(ids)), test_fraction=0.2, seed=3).test == s.test
    assert make_splits(ids, test_fraction=0.2, seed=4).test != s.test
    assert make_splits(ids).test == []  # off unless asked (searches keep their splits)


def test_folds_partition_the_non_test_cases():
    from nasengine.data.splits import make_splits

    ids = [f"case_{i:02d}" for i in range(23)]
    folds = [make_splits(ids, test_fraction=0.2, fold=k, seed=1) for k in range(5)]
    test = set(folds[0].test)
    assert all(set(f.test) == test for f in folds)
    vals = [set(f.val) for f in folds]
    assert set().union(*vals) == set(ids) - test  # every non-test case validates once
    assert sum(len(v) for v in vals) == len(set(ids) - test)
    for f in folds:
        assert not set(f.train) & set(f.val) and not (set(f.train) | set(f.val)) & test
        assert f.num_folds == 5
    with pytest.raises(ValueError, match="fold"):
        make_splits(ids, fold=5)


def test_labelled_test_cases_of_dataset_json_are_the_test_split(tmp_path):
    from nasengine.data.demo import make_anatomy_data
    from nasengine.data.splits import labelled_test_entries, resolve_test_fraction

    root = make_anatomy_data(tmp_path / "p", n_cases=3, n_test=2, shape=(24, 24, 12))
    entries = labelled_test_entries(root)
    assert [e["id"] for e in entries] == ["phantom_test_003", "phantom_test_004"]
    assert all((root / e["image"]).is_file() and (root / e["label"]).is_file()
               for e in entries)
    assert resolve_test_fraction(None, root) == 0.0
    assert resolve_test_fraction(None, make_demo_data(tmp_path / "d", n_cases=2,
                                                      shape=(24, 24, 16))) == 0.2
    assert resolve_test_fraction(0.3, root) == 0.3


def test_anatomy_phantom_has_nested_touching_classes_and_anisotropic_spacing(tmp_path):
    from scipy import ndimage

    from nasengine.data.demo import ANATOMY_LABELS, make_anatomy_data

    root = make_anatomy_data(tmp_path / "p", n_cases=2, n_test=1, seed=5)
    description = json.loads((root / "dataset.json").read_text())
    assert description["labels"] == ANATOMY_LABELS and len(description["test"]) == 1
    label_img = nib.load(str(root / "labelsTr" / "phantom_000.nii.gz"))
    label = np.asarray(label_img.dataobj).astype(np.uint8)
    assert np.allclose(label_img.header.get_zooms(), (0.9, 0.9, 2.5))
    assert set(np.unique(label)) == {0, 1, 2, 3, 4}
    # nested: the medulla never touches the background (the cortex surrounds it), the cyst
    # sits inside the medulla
    grown = ndimage.binary_dilation(label == 2)
    assert not (grown & (label == 0)).any()
    assert not (ndimage.binary_dilation(label == 4) & np.isin(label, (0, 3))).any()
    # touching: the vessel shares a boundary with the cortex
    assert (ndimage.binary_dilation(label == 3) & (label == 1)).any()
    # not a threshold: cortex and vessel intensities overlap heavily
    image = np.asarray(nib.load(str(root / "imagesTr" / "phantom_000.nii.gz")).dataobj)
    cortex, vessel = image[label == 1], image[label == 3]
    assert abs(cortex.mean() - vessel.mean()) < 0.5 * cortex.std()
