"""Inference options: window count wording, mirroring TTA symmetry, per-class LCC decision
(nnU-Net's rule), the stored decision applied by predict, fold-ensemble softmax averaging."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from inference_testing import LABELS, demo_plan, odd_input, tiny_bundle  # noqa: E402

from nasengine import api  # noqa: E402
from nasengine.data.preprocess import preprocess_image, restore_label  # noqa: E402
from nasengine.inference.bundle import BundleError, load_network, read_bundle  # noqa: E402
from nasengine.inference.ensemble import write_ensemble  # noqa: E402
from nasengine.inference.postprocess import (  # noqa: E402
    decide_lcc,
    keep_largest_components,
    lcc_classes_for,
    read_postprocessing,
    write_postprocessing,
)
from nasengine.inference.predict import (  # noqa: E402
    mirror_flips,
    predict_probabilities,
    segment,
    window_count,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    plan, demo = demo_plan(root / "demo")
    return plan, demo, root


def test_window_count_matches_monai_and_progress_is_plain(setup, tmp_path):
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    for shape, roi, overlap in [((66, 78, 63), (32, 32, 32), 0.5), ((16, 16, 16), (16, 16, 16), 0.5),
                                ((40, 17, 9), (16, 16, 16), 0.25)]:
        padded = [max(s, r) for s, r in zip(shape, roi)]
        expected = len(dense_patch_slices(padded, roi, _get_scan_interval(padded, roi, 3, [overlap] * 3)))
        assert window_count(shape, roi, overlap) == expected
    plan, demo, root = setup
    bundle = tiny_bundle(tmp_path / "m", plan)
    messages = []
    api.predict(bundle, odd_input(demo, tmp_path / "in.nii.gz"), tmp_path / "out.nii.gz",
                progress=messages.append)
    segmenting = [m for m in messages if m.startswith("segmenting")]
    assert segmenting and "\u00d7" in segmenting[0] and "overlapping window" in segmenting[0], messages
    assert not any("sliding window over" in m for m in messages)


class Lopsided(nn.Module):
    """Not mirror-symmetric: a 3x3x3 convolution with random weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x) * 5


def test_mirroring_tta_is_symmetric_under_flips():
    assert len(mirror_flips(True)) == 8 and mirror_flips(False) == [()]
    net = Lopsided().eval()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 9, 7, 5)).astype(np.float32)
    kwargs = dict(roi_size=(9, 7, 5), device=torch.device("cpu"), amp=False, sw_batch_size=1)
    for axis in (1, 2, 3):
        flipped = np.ascontiguousarray(np.flip(image, axis))
        plain = predict_probabilities(net, image, mirror=False, **kwargs)
        plain_f = predict_probabilities(net, flipped, mirror=False, **kwargs)
        assert not torch.allclose(plain_f, torch.flip(plain, (axis,)), atol=1e-3)  # the net is lopsided
        tta = predict_probabilities(net, image, mirror=True, **kwargs)
        tta_f = predict_probabilities(net, flipped, mirror=True, **kwargs)
        torch.testing.assert_close(tta_f, torch.flip(tta, (axis,)), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tta.sum(0), torch.ones(9, 7, 5), atol=1e-5, rtol=0)


def _blob(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_keep_largest_components_per_class():
    label = np.zeros((20, 20, 20), np.uint8)
    label[_blob(label.shape, (1, 1, 1), (6, 6, 6))] = 1
    label[_blob(label.shape, (10, 10, 10), (12, 12, 12))] = 1  # small stray bit of class 1
    label[_blob(label.shape, (14, 1, 1), (16, 3, 3))] = 2
    label[_blob(label.shape, (14, 14, 14), (15, 15, 15))] = 2
    out = keep_largest_components(label, [1])
    assert (out == 1).sum() == 125 and (out[10:12, 10:12, 10:12] == 0).all()
    assert (out == 2).sum() == (label == 2).sum()  # class 2 untouched
    corner = np.zeros((4, 4, 4), np.uint8)
    corner[0, 0, 0] = corner[1, 1, 1] = 1  # touching at a corner: one object (26-connected)
    assert (keep_largest_components(corner, [1]) == 1).sum() == 2


def test_lcc_decision_keeps_it_only_where_validation_dice_improves(tmp_path):
    shape = (24, 24, 24)
    pairs = []
    for shift in (0, 1):
        truth = np.zeros(shape, np.uint8)
        truth[_blob(shape, (2 + shift, 2, 2), (10 + shift, 10, 10))] = 1
        truth[_blob(shape, (14, 14, 2), (18, 18, 6))] = 2  # class 2 is really two parts
        truth[_blob(shape, (14, 14, 12), (17, 17, 15))] = 2
        pred = truth.copy()
        pred[_blob(shape, (18, 2, 18), (21, 5, 21))] = 1  # a false positive away from the organ
        pairs.append((pred, truth))
    decision = decide_lcc(pairs, LABELS)
    assert decision["lcc_classes"] == [1]
    organ, lesion = decision["per_class"]["1"], decision["per_class"]["2"]
    assert organ["keep"] and organ["dice_after"] == pytest.approx(1.0) and organ["dice_before"] < 1
    assert not lesion["keep"] and lesion["dice_after"] < lesion["dice_before"] == pytest.approx(1.0)
    assert organ["n_cases"] == 2

    write_postprocessing(tmp_path, decision, cases=["a", "b"])
    doc = read_postprocessing(tmp_path)
    assert doc["lcc_classes"] == [1] and doc["decided_on"]["cases"] == ["a", "b"]
    assert lcc_classes_for("auto", [tmp_path], LABELS) == [1]
    assert lcc_classes_for("none", [tmp_path], LABELS) == []
    assert lcc_classes_for("lcc", [tmp_path], LABELS) == [1, 2]
    assert lcc_classes_for("auto", [tmp_path / "undecided"], LABELS) == []
    with pytest.raises(ValueError, match="postprocess must be one of"):
        lcc_classes_for("largest", [tmp_path], LABELS)


def test_predict_applies_the_stored_decision(setup, tmp_path):
    plan, demo, _ = setup
    bundle = tiny_bundle(tmp_path / "m", plan, seed=5)
    image = odd_input(demo, tmp_path / "in.nii.gz")
    raw, info = segment(bundle, image, postprocess="auto")
    assert info["lcc_classes"] == []
    write_postprocessing(bundle, {"lcc_classes": [1, 2]}, cases=[])
    cleaned = np.asarray(nib.load(str(api.predict(bundle, image, tmp_path / "o.nii.gz"))).dataobj)
    np.testing.assert_array_equal(cleaned, keep_largest_components(raw, [1, 2]))
    untouched = np.asarray(nib.load(str(api.predict(bundle, image, tmp_path / "p.nii.gz",
                                                    postprocess="none"))).dataobj)
    np.testing.assert_array_equal(untouched, raw)


def test_decide_postprocessing_on_the_models_validation_cases(setup, tmp_path):
    plan, demo, _ = setup
    bundle = tiny_bundle(tmp_path / "m", plan, seed=2,
                         source={"data_dir": str(demo), "val_cases": ["demo_001", "demo_002"]})
    doc = api.decide_postprocessing(bundle)
    assert doc["decided_on"] == {"cases": ["demo_001", "demo_002"], "source": "validation"}
    assert set(doc["per_class"]) == {"1", "2"}
    for row in doc["per_class"].values():
        assert row["keep"] == (row["dice_after"] is not None and row["dice_after"] > row["dice_before"])
    assert json.loads((bundle / "postprocessing.json").read_text())["lcc_classes"] == doc["lcc_classes"]


def test_fold_ensemble_averages_softmax(setup, tmp_path):
    plan, demo, _ = setup
    folds = [tiny_bundle(tmp_path / f"fold_{i}", plan, seed=10 + i) for i in range(3)]
    image = odd_input(demo, tmp_path / "in.nii.gz")
    arr, meta = preprocess_image(image, plan)
    probs = [predict_probabilities(load_network(read_bundle(f)), arr, roi_size=plan.patch_size,
                                   device=torch.device("cpu")) for f in folds]
    expected = restore_label((sum(probs) / 3).argmax(0).to(torch.uint8).numpy(), meta)
    singles = [restore_label(p.argmax(0).to(torch.uint8).numpy(), meta) for p in probs]
    assert any(not np.array_equal(expected, s) for s in singles)  # the average is not one member's

    by_list, info = segment(folds, image, postprocess="none")
    np.testing.assert_array_equal(by_list, expected)
    assert len(info["members"]) == 3
    ensemble = write_ensemble(tmp_path / "ensemble", folds)
    assert json.loads((ensemble / "ensemble.json").read_text())["members"] == ["../fold_0", "../fold_1", "../fold_2"]
    out = api.predict(ensemble, image, tmp_path / "ens.nii.gz", postprocess="none")
    np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), expected)

    other = tiny_bundle(tmp_path / "other", plan, labels={0: "background", 1: "liver", 2: "tumour"})
    with pytest.raises(BundleError, match="segments other classes"):
        segment([folds[0], other], image)
