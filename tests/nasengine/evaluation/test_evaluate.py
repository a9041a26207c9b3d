"""Evaluation in the input's own geometry: an anisotropic, non-canonical input is predicted
through the path ``predict`` uses, the prediction lies on the input's grid (scoring it against
predict's own output gives Dice 1 and distance 0) and distances use the input's spacing."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "inference"))
from inference_testing import LABELS, demo_plan, odd_affine, odd_input, tiny_bundle, write_nifti  # noqa: E402

from nasengine import api, cli  # noqa: E402
from nasengine.data.errors import DataError  # noqa: E402
from nasengine.evaluation.cases import spacing_of  # noqa: E402
from nasengine.evaluation.metrics import class_metrics  # noqa: E402
from nasengine.inference.bundle import update_bundle_info  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    plan, demo = demo_plan(root / "demo")
    bundle = tiny_bundle(root / "model", plan, seed=7, source={"data_dir": str(demo)})
    # a test case of our own in demo/: the odd-geometry image, labelled with what the model
    # predicts (through api.predict) and with that label shifted one voxel along axis 0
    image = odd_input(demo, demo / "imagesTs" / "odd_case.nii.gz")
    predicted = api.predict(bundle, image, root / "predicted.nii.gz", postprocess="none")
    pred = np.asarray(nib.load(str(predicted)).dataobj)
    assert {1, 2} & set(np.unique(pred).tolist()), "the untrained net must predict some class"
    write_nifti(demo / "labelsTs" / "odd_case.nii.gz", pred, odd_affine())
    shifted = np.zeros_like(pred)
    shifted[1:] = pred[:-1]
    write_nifti(demo / "labelsTs" / "odd_shifted.nii.gz", shifted, odd_affine())
    return bundle, demo, pred, shifted


def test_prediction_is_scored_on_the_inputs_own_grid(model):
    bundle, demo, pred, shifted = model
    report = api.evaluate(bundle, demo, cases=[
        {"id": "same", "image": "imagesTs/odd_case.nii.gz", "label": "labelsTs/odd_case.nii.gz"},
        {"id": "shifted", "image": "imagesTs/odd_case.nii.gz", "label": "labelsTs/odd_shifted.nii.gz"},
    ], postprocess="none")
    json.dumps(report, allow_nan=False)  # JSON-able, no NaN
    same, moved = report["cases"]
    assert same["shape"] == [21, 9, 15] and same["spacing_mm"] == pytest.approx([0.8, 2.5, 1.2])
    assert report["settings"]["nsd_tolerance_mm"] == 1.0
    for name, row in same["classes"].items():
        if row["present"]:
            assert row["dice"] == pytest.approx(1.0) and row["hd95_mm"] == pytest.approx(0.0), name
            assert row["nsd"] == pytest.approx(1.0) and row["volume_error_ml"] == pytest.approx(0.0)
    spacing = spacing_of(odd_affine())
    for value, name in LABELS.items():
        if value == 0 or not (pred == value).any():
            continue
        expected = class_metrics(pred == value, shifted == value, spacing)
        got = moved["classes"][name]
        for key in ("dice", "hd95_mm", "nsd", "volume_error_ml"):
            assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), (name, key)
        iso = class_metrics(pred == value, shifted == value, (1.0, 1.0, 1.0))
        assert got["hd95_mm"] != pytest.approx(iso["hd95_mm"])  # millimetres, not voxels
    assert sum(report["summary"][n]["dice"]["n"] for n in report["classes"]) >= 2


def test_the_recorded_test_split_and_the_cli(model, tmp_path, capsys):
    bundle, demo, _, _ = model
    with pytest.raises(DataError, match="no labelled test cases"):
        api.evaluate(bundle, tmp_path)  # an empty folder: nothing to evaluate on, one clear line
    update_bundle_info(bundle, test_cases=[{"id": "odd", "image": "imagesTs/odd_case.nii.gz",
                                            "label": "labelsTs/odd_case.nii.gz"}])
    report = api.evaluate(bundle)  # dataset folder and cases from the bundle
    assert [c["id"] for c in report["cases"]] == ["odd"]
    csv_path, json_path = tmp_path / "cases.csv", tmp_path / "report.json"
    assert cli.main(["evaluate", "--model", str(bundle), "--csv", str(csv_path),
                     "--json", str(json_path), "--postprocess", "none", "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 test case(s), each in its own geometry; surface Dice at 1 mm" in out
    assert csv_path.read_text().splitlines()[0].startswith("case,class,dice,hd95_mm,nsd_at_1mm")
    assert json.loads(json_path.read_text())["cases"][0]["id"] == "odd"
    assert cli.main(["evaluate", "--model", str(tmp_path / "nope")]) == 2
