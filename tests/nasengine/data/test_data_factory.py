"""DataFactory: loaders over any subset of the training cases at any patch size, the
weights/architecture split (1:1 = make_splits' halves; 4:1 for SCNAS), validation cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasengine.data import DataFactory, PatchLoader, PreprocessedCase, PreprocessMeta, make_splits, split_ids

_META = PreprocessMeta(
    original_shape=(1, 1, 1), original_affine=np.eye(4).tolist(),
    orientation=[[0, 1], [1, 1], [2, 1]], ras_shape=(1, 1, 1), ras_spacing=(1.0, 1.0, 1.0),
    ras_affine=np.eye(4).tolist(), resampled_shape=(1, 1, 1), label_ids=[0, 1])


def _cases(n=6, shape=(20, 18, 16)):
    """Case ``c<i>`` has image value ``i`` everywhere, so a batch tells where it came from."""
    cases = {}
    for i in range(n):
        label = np.zeros(shape, np.uint8)
        label[5:10, 5:10, 5:10] = 1
        image = np.full((1, *shape), float(i), np.float32)
        cases[f"c{i}"] = PreprocessedCase(case_id=f"c{i}", image=image, label=label, meta=_META)
    return cases


def _factory(n=6):
    cases = _cases(n)
    splits = make_splits(list(cases), val_fraction=0.2, seed=0)
    return DataFactory(cases=cases, train_ids=splits.train, val_ids=splits.val,
                       patch_size=(16, 16, 16), batch_size=2, seed=3), splits


def test_loader_over_a_subset_at_its_own_patch_and_batch_size():
    factory, splits = _factory()
    subset = splits.train[:2]
    loader = factory.loader(subset, patch_size=(8, 8, 8), batch_size=3, seed=1, augment=False)
    assert isinstance(loader, PatchLoader)
    values = set()
    for _ in range(6):
        batch = next(loader)
        assert batch["image"].shape == (3, 1, 8, 8, 8) and batch["label"].shape == (3, 1, 8, 8, 8)
        assert batch["label"].dtype == torch.int64
        values |= {int(v) for v in batch["image"].flatten().unique()}
    assert values <= {int(i[1:]) for i in subset}  # only the chosen cases
    default = factory.loader(splits.train)
    assert next(default)["image"].shape == (2, 1, 16, 16, 16)  # the factory's defaults


def test_same_arguments_same_batches_and_resume():
    factory, splits = _factory()
    a = factory.loader(splits.train, seed=5)
    b = factory.loader(splits.train, seed=5)
    assert all(torch.equal(next(a)["image"], next(b)["image"]) for _ in range(3))
    state = a.state_dict()
    expected = next(a)["image"]
    c = factory.loader(splits.train, seed=5)
    c.load_state_dict(state)
    assert torch.equal(next(c)["image"], expected)


def test_split_one_to_one_equals_make_splits_halves():
    for n in range(2, 12):
        splits = make_splits([f"c{i}" for i in range(n)], val_fraction=0.0)
        assert split_ids(splits.train) == (splits.train1, splits.train2), n
    factory, splits = _factory()
    assert factory.split() == (splits.train1, splits.train2)


def test_split_four_to_one_for_scnas():
    ids = [f"c{i}" for i in range(10)]
    first, second = split_ids(ids, (4, 1))
    assert (len(first), len(second)) == (8, 2) and first + second == ids
    assert split_ids(ids, 4) == (first, second)  # a number r means r:1
    assert split_ids(["only"], (4, 1)) == (["only"], ["only"])
    assert split_ids(["a", "b"], (99, 1)) == (["a"], ["b"])  # both parts keep a case
    for bad in ((0, 1), (1, -1), "4:1", (1,)):
        with pytest.raises(ValueError, match="split ratio"):
            split_ids(ids, bad)


def test_val_cases_and_unknown_ids():
    factory, splits = _factory()
    assert [c.case_id for c in factory.val_cases()] == splits.val
    assert [c.case_id for c in factory.val_cases(splits.train[:1])] == splits.train[:1]
    with pytest.raises(KeyError, match="nope"):
        factory.loader(["nope"])
    with pytest.raises(TypeError, match="list of ids"):
        factory.loader("c1")
    with pytest.raises(ValueError, match="overlap"):
        DataFactory(cases=_cases(), train_ids=["c1", "c2"], val_ids=["c2"],
                    patch_size=(16, 16, 16))
