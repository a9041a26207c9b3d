"""Fingerprint numbers against independent computations; plan derivation rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasengine.data import Plan, compute_fingerprint, load_dataset, make_plan

# Stored axis 0 -> world S (2.0 mm), axis 1 -> world R (0.5 mm), axis 2 -> world P (0.7 mm).
PERMUTED = np.array([[0, 0.5, 0, 1.0], [0, 0, -0.7, 2.0], [2.0, 0, 0, 3.0], [0, 0, 0, 1]])


def _two_cases(make_msd, channels=None):
    rng = np.random.default_rng(5)
    cases = []
    for index, shape in enumerate([(4, 10, 8), (6, 12, 8)]):
        n_channels = len(channels) if channels else 1
        image = rng.normal(100 * (index + 1), 20, size=shape + ((n_channels,) if channels else ())).astype(np.float32)
        label = np.zeros(shape, np.uint8)
        label[1:3, 2:6, 2:5] = 1
        label[2, 3, 3 + index] = 2
        cases.append((f"c{index}", image, label, PERMUTED))
    channel_map = {str(i): name for i, name in enumerate(channels)} if channels else None
    return load_dataset(make_msd(cases, channels=channel_map)), cases


def test_fingerprint_matches_independent_computation(make_msd):
    spec, cases = _two_cases(make_msd)
    fingerprint = compute_fingerprint(spec)
    json.dumps(fingerprint)  # JSON-serialisable
    assert fingerprint["spacings"] == [pytest.approx([0.5, 0.7, 2.0])] * 2  # RAS axis order
    assert fingerprint["shapes"] == [[10, 8, 4], [12, 8, 6]]
    assert fingerprint["median_shape"] == [11.0, 8.0, 5.0]
    foreground = np.concatenate([image[label > 0] for _, image, label, _ in cases]).astype(np.float64)
    stats = fingerprint["intensity"][0]
    assert stats["channel"] == "MR"
    assert stats["n_voxels"] == foreground.size == 2 * 24
    assert stats["mean"] == pytest.approx(foreground.mean())
    assert stats["std"] == pytest.approx(foreground.std())
    assert stats["percentile_00_5"] == pytest.approx(np.percentile(foreground, 0.5))
    assert stats["percentile_99_5"] == pytest.approx(np.percentile(foreground, 99.5))
    assert (stats["min"], stats["max"]) == pytest.approx((foreground.min(), foreground.max()))
    all_labels = np.concatenate([label.ravel() for _, _, label, _ in cases])
    for value in (0, 1, 2):
        assert fingerprint["class_voxel_fractions"][str(value)] == pytest.approx(np.mean(all_labels == value))
    assert fingerprint["class_case_fractions"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    assert fingerprint["modality"] == "MR" and fingerprint["n_cases"] == 2


def test_fingerprint_multichannel_statistics_per_channel(make_msd):
    spec, cases = _two_cases(make_msd, channels=["CT", "PET"])
    fingerprint = compute_fingerprint(spec)
    for channel in range(2):
        foreground = np.concatenate([image[..., channel][label > 0] for _, image, label, _ in cases])
        assert fingerprint["intensity"][channel]["mean"] == pytest.approx(float(foreground.astype(np.float64).mean()))
    assert [s["channel"] for s in fingerprint["intensity"]] == ["CT", "PET"]


def _fingerprint(spacings, shapes, channels=("MR",)):
    return {
        "spacings": spacings,
        "shapes": shapes,
        "labels": {"0": "background", "1": "organ"},
        "channel_names": list(channels),
        "modality": channels[0],
        "intensity": [
            {"channel": c, "mean": 50.0, "std": 10.0, "percentile_00_5": -100.0, "percentile_99_5": 300.0} for c in channels
        ],
    }


def test_plan_isotropic_uses_median_spacing_and_fitting_patch():
    fingerprint = _fingerprint([[1.0, 1.0, 1.5], [0.8, 0.8, 1.5], [1.2, 1.2, 2.5]], [[100, 90, 70], [120, 120, 80], [80, 80, 40]])
    plan = make_plan(fingerprint, divisor=16)
    assert plan.target_spacing == pytest.approx((1.0, 1.0, 1.5))
    resampled = np.round(np.array(fingerprint["shapes"]) * np.array(fingerprint["spacings"]) / np.array([1.0, 1.0, 1.5]))
    median = np.median(resampled, axis=0)
    assert plan.median_shape == tuple(int(v) for v in median)
    for side, fit in zip(plan.patch_size, median):
        assert side % 16 == 0 and side <= fit and side + 16 > min(fit, 128)
    capped = make_plan(fingerprint, divisor=16, max_patch=32)
    assert capped.patch_size == (32, 32, 32)
    per_axis_cap = make_plan(fingerprint, divisor=8, max_patch=(64, 48, 24))
    assert per_axis_cap.patch_size == (64, 48, 24)


def test_plan_patch_never_smaller_than_divisor():
    plan = make_plan(_fingerprint([[1, 1, 1]], [[20, 20, 10]]), divisor=32)
    assert plan.patch_size == (32, 32, 32)


def test_plan_anisotropic_uses_10th_percentile_on_low_res_axis():
    z_spacings = [5.0, 5.0, 3.0, 4.0, 5.0, 2.5, 5.0]
    spacings = [[0.8, 0.8, z] for z in z_spacings]
    shapes = [[512, 512, 30]] * len(z_spacings)
    plan = make_plan(_fingerprint(spacings, shapes), divisor=16)
    assert plan.target_spacing[:2] == pytest.approx((0.8, 0.8))
    assert plan.target_spacing[2] == pytest.approx(np.percentile(z_spacings, 10))
    assert "anisotropic" in plan.notes[0]


def test_plan_explicit_patch_and_spacing():
    fingerprint = _fingerprint([[1, 1, 1]], [[64, 64, 64]])
    plan = make_plan(fingerprint, divisor=16, patch_size=(96, 32, 48), target_spacing=(2, 2, 2))
    assert plan.patch_size == (96, 32, 48)
    assert plan.target_spacing == (2.0, 2.0, 2.0) and plan.median_shape == (32, 32, 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        make_plan(fingerprint, divisor=16, patch_size=(40, 32, 32))


def test_plan_normalisation_ct_vs_mr_and_roundtrip():
    ct = make_plan(_fingerprint([[1, 1, 1]], [[64, 64, 64]], channels=("CT",)), divisor=8)
    assert ct.normalisation == [{"scheme": "ct", "clip_low": -100.0, "clip_high": 300.0, "mean": 50.0, "std": 10.0}]
    mr = make_plan(_fingerprint([[1, 1, 1]], [[64, 64, 64]], channels=("T2", "ADC")), divisor=8)
    assert mr.normalisation == [{"scheme": "zscore"}, {"scheme": "zscore"}]
    assert (mr.in_channels, mr.out_channels, mr.label_names) == (2, 2, ["background", "organ"])
    assert Plan.from_dict(json.loads(json.dumps(ct.to_dict()))) == ct
