"""DAST end to end through the engine API on the demo data (CPU, tiny preset): search with the
live view's numbers, exact resume, retrain into a bundle, predict."""

import json
import math

import nibabel as nib
import numpy as np
import torch
from conftest import CountingCancel

from nasengine import api
from nasengine.events import CallableCancelToken, Cancelled
from nasengine.events.sinks import read_events
from nasengine.genotype import validate
from nasengine.methods.dast import TRANSFORMER


def events(out, kind):
    return [e for e in read_events(out / api.EVENTS_FILE) if e["type"] == kind]


def test_tiny_search_yields_a_valid_lattice_genotype(tiny_search):
    _, genotype, _ = tiny_search
    doc = validate(genotype)
    assert doc["method"] == "dast" and doc["kind"] == "lattice"
    assert doc["meta"]["cell_ops"] == ["skip", "conv_3x3x3", TRANSFORMER]
    for edge in doc["edges"]:
        assert (edge["op"] == TRANSFORMER) == ("params" in edge and "tokens" in edge["params"])


def test_step_events_carry_the_memory_ratio_against_the_budget(tiny_search):
    out, _, _ = tiny_search
    steps = events(out, "step")
    assert len(steps) == 36
    for e in steps:
        metrics = e["metrics"]
        assert metrics["memory_budget"] == 0.8
        assert 0 < metrics["memory_ratio"] < 1
        assert {f"transformer_level_{d}" for d in (1, 2, 3)} <= set(metrics)
    search = [e for e in steps if e["phase"] == "search"]
    assert search and all("reg_memory" in e["losses"] for e in search)
    # the architecture moves the ratio (the memory term and the segmentation loss act on it)
    assert steps[-1]["metrics"]["memory_ratio"] != steps[0]["metrics"]["memory_ratio"]


def test_architecture_snapshots_show_the_transformer_weight_of_every_edge(tiny_search):
    out, _, _ = tiny_search
    snapshots = events(out, "architecture")
    assert len(snapshots) >= 2
    cell_edges = [e for e in snapshots[-1]["genotype"]["edges"] if "op_weights" in e]
    assert len(cell_edges) == 3 * 7  # every candidate edge of the 3 x 3 lattice
    assert all(set(e["op_weights"]) == {"skip", "conv_3x3x3", TRANSFORMER} for e in cell_edges)
    assert all(math.isclose(sum(e["op_weights"].values()), 1, abs_tol=2e-3) for e in cell_edges)


def test_search_resumes_exactly(tiny_search, demo_data, tmp_path):
    out_ref, genotype_ref, checks = tiny_search
    out = tmp_path / "resumed"
    counter = CountingCancel(at=max(2, checks // 2))
    try:
        api.search("dast", demo_data, out, preset="tiny", device="cpu", cancel=CallableCancelToken(counter))
    except Cancelled:
        pass
    else:
        raise AssertionError("the search was not cancelled halfway")
    genotype = api.search("dast", demo_data, out, preset="tiny", device="cpu", resume=True)
    assert genotype == genotype_ref
    ref = torch.load(out_ref / api.CHECKPOINT_DIR / "checkpoint.pt", weights_only=True)
    got = torch.load(out / api.CHECKPOINT_DIR / "checkpoint.pt", weights_only=True)
    assert ref["step"] == got["step"] == 36
    for key, value in ref["network"].items():
        assert torch.equal(value, got["network"][key]), key
    ref_losses = [e["losses"] for e in events(out_ref, "step")]
    got_losses = [e["losses"] for e in events(out, "step")]
    assert got_losses == ref_losses


def test_retrain_and_predict_through_the_api(tiny_search, demo_data, tmp_path):
    _, genotype, _ = tiny_search
    bundle = api.retrain(genotype, demo_data, tmp_path / "model", preset="tiny",
                         overrides={"export": False}, device="cpu")
    image = sorted((demo_data / "imagesTr").glob("*.nii.gz"))[0]
    out = api.predict(bundle, image, tmp_path / "pred.nii.gz", device="cpu")
    src, pred = nib.load(str(image)), nib.load(str(out))
    assert pred.shape == src.shape[:3] and np.allclose(pred.affine, src.affine)
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["method"] == "dast" and info["source"]["retrain_settings"] == "dast"
