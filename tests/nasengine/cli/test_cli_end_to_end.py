"""CLI end to end: make-demo-data -> search -> retrain -> predict; cancel/resume; errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from engine_fakes import FakeMethod  # noqa: E402

from nasengine.cli import main  # noqa: E402
from nasengine.events import read_events  # noqa: E402
from nasengine.genotype import load as load_genotype  # noqa: E402
from nasengine.inference.bundle import load_network, read_bundle  # noqa: E402
from nasengine.methods import register, registry, unregister  # noqa: E402

REPO = Path(__file__).parents[3]

# per method: (search preset overrides, retrain overrides) that keep the run tiny on one core
FAST = {
    "fake": ([], ["patch_size=[16,16,16]"]),
    "dints": (["warmup_steps=1", "weight_only_steps=1", "search_steps=2", "lr_milestones=[]",
               "validate_every=4", "checkpoint_every=2", "snapshot_every=2"], []),
}


@pytest.fixture
def fake_method():
    register(FakeMethod())
    yield "fake"
    unregister("fake")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "demo"
    assert main(["make-demo-data", str(path), "--cases", "4"]) == 0
    assert (path / "dataset.json").exists()
    return path


def _sets(items):
    return [arg for item in items for arg in ("--set", item)]


def _check_events(path: Path) -> list[dict]:
    events = read_events(path)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    times = [e["time"] for e in events]
    assert times == sorted(times)
    return events


@pytest.mark.parametrize("method", ["fake", "dints"])
def test_search_retrain_predict(method, tmp_path, demo, request, capsys):
    if method == "fake":
        request.getfixturevalue("fake_method")
    else:
        assert method in registry, f"{method} must be registered (a broken method fails)"
    search_sets, retrain_sets = FAST[method]
    search_out, model, seg = tmp_path / "search", tmp_path / "model", tmp_path / "seg.nii.gz"
    assert main(["search", "--method", method, "--data", str(demo), "--out", str(search_out),
                 "--preset", "tiny", "--quiet", *_sets(search_sets)]) == 0
    genotype = load_genotype(search_out / "genotype.json")  # validates
    assert genotype["method"] == method and not genotype.get("continuous", False)
    events = _check_events(search_out / "events.jsonl")
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "finished"
    assert {"step", "architecture", "checkpoint"} <= set(types)
    assert (search_out / "checkpoints" / "checkpoint.pt").exists()
    assert (search_out / "plan.json").exists() and (search_out / "splits.json").exists()

    assert main(["retrain", "--genotype", str(search_out / "genotype.json"), "--data", str(demo),
                 "--out", str(model), "--preset", "tiny", "--quiet",
                 *_sets(retrain_sets + ["export=false"])]) == 0
    bundle = read_bundle(model)
    assert bundle.method == method and bundle.labels == {0: "background", 1: "organ",
                                                         2: "lesion"}
    assert set(bundle.info["validation"]["dice"]) == {"organ", "lesion"}
    load_network(bundle)
    events = _check_events(model / "events.jsonl")
    assert events[-1]["type"] == "finished" and events[-1]["bundle"] == str(model)

    source = sorted((demo / "imagesTs").glob("*.nii.gz"))[0]
    assert main(["predict", "--model", str(model), "--input", str(source),
                 "--output", str(seg)]) == 0
    ref, out = nib.load(str(source)), nib.load(str(seg))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.affine, ref.affine, atol=1e-6)
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2}
    assert "segmentation written to" in capsys.readouterr().out


def test_cancel_then_resume_from_cli(tmp_path, demo, fake_method):
    out = tmp_path / "search"
    flag = tmp_path / "stop"
    flag.touch()
    assert main(["search", "--method", "fake", "--data", str(demo), "--out", str(out),
                 "--preset", "tiny", "--quiet", "--cancel-file", str(flag)]) == 3
    assert (out / "checkpoints" / "checkpoint.pt").exists()
    assert [e["type"] for e in read_events(out / "events.jsonl")][-1] == "cancelled"
    assert not (out / "genotype.json").exists()
    flag.unlink()
    assert main(["search", "--method", "fake", "--data", str(demo), "--out", str(out),
                 "--preset", "tiny", "--quiet", "--resume", "--cancel-file", str(flag)]) == 0
    events = _check_events(out / "events.jsonl")
    assert "cancelled" not in [e["type"] for e in events]
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 4
    load_genotype(out / "genotype.json")


def test_methods_and_estimate_commands(demo, fake_method, capsys):
    assert main(["methods"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fake = next(m for m in doc["methods"] if m["name"] == "fake")
    assert fake["schema"]["properties"]["patch_size"]["type"] == "array"
    assert set(fake["presets"]) == {"paper", "tiny"}
    assert doc["retrain"]["properties"]["steps"]["default"] == 40000
    assert fake["retrain_schema"]["properties"]["steps"]["default"] == 40000  # shared fallback
    assert main(["estimate", "--method", "fake", "--data", str(demo), "--preset", "tiny"]) == 0
    table = capsys.readouterr().out
    assert "search" in table and "retrain" in table and "GiB" in table
    assert main(["estimate", "--method", "fake", "--data", str(demo), "--json",
                 "--set", "batch_size=4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["search_bytes"] == 2 * doc["retrain_bytes"] > 0
    assert doc["details"]["in_channels"] == 1 and doc["details"]["out_channels"] == 3


@pytest.mark.parametrize("argv, message", [
    (["search", "--method", "nope", "--data", "{demo}", "--out", "{tmp}/o"],
     "error: unknown search method 'nope'; known methods:"),
    (["search", "--method", "fake", "--data", "{demo}", "--out", "{tmp}/o", "--set",
      "patch_size=[30,32,32]"],
     "error: patch_size: must be 3 positive multiples of 8, got [30, 32, 32]"),
    (["search", "--method", "fake", "--data", "{demo}", "--out", "{tmp}/o", "--preset", "huge"],
     "error: preset: unknown preset 'huge' for fake; known presets: paper, tiny"),
    (["search", "--method", "fake", "--data", "{tmp}/missing", "--out", "{tmp}/o"],
     "error: dataset.json: not found in"),
    (["retrain", "--genotype", "{tmp}/bad.json", "--data", "{demo}", "--out", "{tmp}/m"],
     "error: "),
    (["retrain", "--genotype", "{tmp}/g.json", "--data", "{demo}", "--out", "{tmp}/m",
      "--set", "stepz=3"],
     "error: stepz: unknown setting (did you mean 'steps'?)"),
    (["retrain", "--genotype", "{tmp}/g.json", "--data", "{demo}", "--out", "{tmp}/m",
      "--method", "fake", "--preset", "huge"],
     "error: preset: unknown retraining preset 'huge' for fake; known presets: default, paper, "
     "cpu, small, tiny"),
    (["retrain", "--genotype", "{tmp}/g.json", "--data", "{demo}", "--out", "{tmp}/m",
      "--method", "nope"],
     "error: unknown search method 'nope'"),
    (["predict", "--model", "{tmp}", "--input", "{tmp}/x.nii.gz", "--output", "{tmp}/y.nii.gz"],
     "error: "),
])
def test_user_errors_are_one_line_exit_2(argv, message, tmp_path, demo, fake_method, capsys):
    (tmp_path / "bad.json").write_text('{"format": "voxelsearch-genotype", "version": 7}')
    from engine_fakes import tiny_genotype

    (tmp_path / "g.json").write_text(json.dumps(tiny_genotype()))
    argv = [a.format(demo=demo, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message), err
    assert "\n" not in err and "Traceback" not in err


def test_subprocess_user_error_has_no_traceback(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "nasengine", "retrain", "--genotype",
                           str(tmp_path / "none.json"), "--data", str(tmp_path), "--out",
                           str(tmp_path / "m")], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
