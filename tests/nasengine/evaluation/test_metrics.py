"""Metrics against hand-computed small cases: a cube against a shifted cube on an
anisotropic grid, a grown cube (volume error), absent and missed classes, the summary, CSV."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from nasengine.evaluation.evaluate import report_csv
from nasengine.evaluation.metrics import case_metrics, class_metrics, summarise

SPACING = (2.0, 1.0, 1.0)  # mm; x is twice as coarse


def _cube(shape=(14, 12, 12), x0=1, size=(10, 10, 10)):
    m = np.zeros(shape, bool)
    m[x0:x0 + size[0], 1:1 + size[1], 1:1 + size[2]] = True
    return m


def test_cube_against_cube_shifted_one_voxel_along_x():
    truth, pred = _cube(x0=1), _cube(x0=2)
    row = class_metrics(pred, truth, SPACING, tolerance_mm=1.0)
    # overlap 9x10x10 of two 1000-voxel cubes
    assert row["dice"] == pytest.approx(2 * 900 / 2000)
    # each cube's surface (faces after a cross erosion) has 1000 - 8^3 = 488 voxels. Of one cube's,
    # the 100 on the face that leaves the other cube and the 6x6 interior of the opposite face lie
    # one x voxel (2 mm) from the other surface; the rest lie 0 or 1 mm away. 136/488 = 28% > 5%,
    # so the 95th percentile is 2 mm both ways.
    assert row["hd95_mm"] == pytest.approx(2.0)
    # surface Dice at 1 mm: (488 - 136) within tolerance on each side
    assert row["nsd"] == pytest.approx(2 * (488 - 136) / (2 * 488))
    # a 2 mm tolerance takes in every surface voxel
    assert class_metrics(pred, truth, SPACING, tolerance_mm=2.0)["nsd"] == pytest.approx(1.0)
    # equal volumes: 1000 voxels x 2 mm^3 = 2 mL each
    assert row["volume_true_ml"] == pytest.approx(2.0) and row["volume_pred_ml"] == pytest.approx(2.0)
    assert row["volume_error_ml"] == pytest.approx(0.0) and row["volume_error_pct"] == pytest.approx(0.0)
    # spacing matters: on a 1 mm isotropic grid the same masks are 1 mm apart
    assert class_metrics(pred, truth, (1.0, 1.0, 1.0))["hd95_mm"] == pytest.approx(1.0)


def test_grown_cube_volume_error_and_dice():
    truth = _cube(x0=1, size=(10, 10, 10))
    pred = _cube(x0=1, size=(12, 10, 10))
    row = class_metrics(pred, truth, SPACING)
    assert row["dice"] == pytest.approx(2 * 1000 / 2200)
    assert row["volume_error_ml"] == pytest.approx(200 * 2.0 / 1000)  # 0.4 mL too much
    assert row["volume_error_pct"] == pytest.approx(20.0)
    assert row["hd95_mm"] == pytest.approx(4.0)  # the far face moved 2 voxels of 2 mm


def test_absent_missed_and_spurious_classes():
    empty = np.zeros((8, 8, 8), bool)
    blob = empty.copy()
    blob[2:5, 2:5, 2:5] = True
    absent = class_metrics(empty, empty, (1.0, 1.0, 1.0))
    assert not absent["present"] and absent["dice"] is None and absent["hd95_mm"] is None
    missed = class_metrics(empty, blob, (1.0, 1.0, 1.0))
    assert missed["missed"] and missed["dice"] == 0.0 and missed["nsd"] == 0.0 and missed["hd95_mm"] is None
    assert missed["volume_error_pct"] == pytest.approx(-100.0)
    spurious = class_metrics(blob, empty, (1.0, 1.0, 1.0))
    assert spurious["spurious"] and spurious["volume_error_pct"] is None


def test_case_metrics_summary_and_csv():
    labels = {0: "background", 1: "organ", 2: "lesion"}
    truth = np.zeros((14, 12, 12), np.uint8)
    truth[_cube(x0=1)] = 1
    rows = []
    for shift in (1, 2, 3):
        pred = np.zeros_like(truth)
        pred[_cube(x0=shift)] = 1
        rows.append({"id": f"c{shift}", "classes": case_metrics(pred, truth, labels, SPACING)})
    summary = summarise(rows, ["organ", "lesion"])
    dices = [1.0, 0.9, 0.8]
    assert summary["organ"]["dice"]["mean"] == pytest.approx(np.mean(dices))
    assert summary["organ"]["dice"]["sd"] == pytest.approx(np.std(dices, ddof=1))
    assert summary["organ"]["dice"]["median"] == pytest.approx(0.9)
    assert summary["organ"]["n_cases"] == 3
    assert summary["lesion"]["n_cases"] == 0 and summary["lesion"]["dice"]["mean"] is None

    report = {"settings": {"nsd_tolerance_mm": 1.0}, "classes": ["organ", "lesion"], "cases": rows}
    table = list(csv.reader(io.StringIO(report_csv(report))))
    assert table[0][:5] == ["case", "class", "dice", "hd95_mm", "nsd_at_1mm"]
    assert len(table) == 1 + 3 * 2
    organ_c2 = next(r for r in table if r[0] == "c2" and r[1] == "organ")
    assert float(organ_c2[2]) == pytest.approx(0.9) and float(organ_c2[3]) == pytest.approx(2.0)
    lesion_c2 = next(r for r in table if r[0] == "c2" and r[1] == "lesion")
    assert lesion_c2[2] == "" and lesion_c2[9] == "no"  # absent: empty cells, present = no
