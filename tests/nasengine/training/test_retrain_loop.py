"""Retraining loop: schedule, validation, bundle, exact resume, cancel."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, fake_val_cases, tiny_genotype  # noqa: E402

from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter  # noqa: E402
from nasengine.inference.bundle import load_network, read_bundle  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.retrain import RETRAIN_PRESETS, RetrainConfig, RetrainData, retrain  # noqa: E402

CPU = torch.device("cpu")
LABELS = {0: "background", 1: "organ", 2: "lesion"}


@dataclasses.dataclass
class FakePlan:
    patch_size: tuple = (16, 16, 16)

    def to_dict(self):
        return {"patch_size": list(self.patch_size), "label_ids": [0, 1, 2]}


def _data():
    return RetrainData(plan=FakePlan(), train=FakeLoader(seed=5), val_cases=fake_val_cases(),
                       in_channels=1, out_channels=3, labels=LABELS, channel_names=["MR"],
                       source={"dataset": "fake"})


def _config(**kw):
    values = dict(recipe="paper", warmup_steps=2, steps=4, lr_milestones=(2, 3), validate_every=3,
                  checkpoint_every=2, export=False)
    values.update(kw)
    return RetrainConfig(**values)


def test_retrain_writes_bundle_and_events(tmp_path):
    sink = ListSink()
    out = retrain(tiny_genotype(), _data(), _config(), Reporter([sink]), tmp_path / "model",
                  device=CPU)
    types = [e["type"] for e in sink]
    assert types[0] == "run_started" and types[-1] == "finished"
    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))
    steps = sink.of_type("step")
    assert [s["lrs"]["weights"] for s in steps] == pytest.approx([0.025, 0.1125, 0.2, 0.2, 0.1,
                                                                  0.05])
    assert [s["phase"] for s in steps] == ["warmup"] * 2 + ["train"] * 4
    assert [v["step"] for v in sink.of_type("validation")] == [3, 6]
    assert sink[-1]["bundle"] == str(out)
    bundle = read_bundle(out)
    assert bundle.info["format"] == "voxelsearch-model" and bundle.info["version"] == 1
    assert bundle.labels == LABELS and bundle.info["channel_names"] == ["MR"]
    assert set(bundle.info["validation"]["dice"]) == {"organ", "lesion"}
    assert bundle.info["source"]["dataset"] == "fake"
    assert bundle.info["source"]["validated_at_step"] == 6
    assert json.loads((out / "genotype.json").read_text()) == tiny_genotype()
    net = load_network(bundle)
    assert net(torch.zeros(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_retrain_resume_is_bitwise_identical_and_cancel_checkpoints(tmp_path):
    retrain(tiny_genotype(), _data(), _config(), None, tmp_path / "a", device=CPU)
    sink = ListSink()
    token = CallableCancelToken(lambda: len(sink.of_type("step")) >= 3)
    with pytest.raises(Cancelled) as info:
        retrain(tiny_genotype(), _data(), _config(), Reporter([sink]), tmp_path / "b",
                token, device=CPU)
    assert info.value.step == 3 and len(sink.of_type("step")) == 3
    assert [e["type"] for e in sink[-2:]] == ["checkpoint", "cancelled"]
    assert not (tmp_path / "b" / "bundle.json").exists()
    torch.manual_seed(99)
    resumed = Reporter([sink])
    # the run (api.retrain) rewinds its reporter once, to the newest checkpoint; loops never do
    resumed.rewind(ckpt.latest_reporter_seq(tmp_path / "b" / "checkpoints"))
    retrain(tiny_genotype(), _data(), _config(), resumed, tmp_path / "b", None,
            resume=True, device=CPU)
    assert "cancelled" not in [e["type"] for e in sink]
    assert [e["step"] for e in sink.of_type("step")] == [1, 2, 3, 4, 5, 6]
    a = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_bundle(tmp_path / "a").info["validation"] == \
        read_bundle(tmp_path / "b").info["validation"]


def test_retrain_presets_follow_the_paper_shape():
    paper = RetrainConfig(**RETRAIN_PRESETS["paper"])
    assert (paper.warmup_steps, paper.steps) == (1000, 40000)
    assert paper.lr_milestones == (8000, 16000, 24000, 32000)
    assert paper.lr(0) == 0.025 and paper.lr(1000) == 0.2 and paper.lr(9000) == 0.1
    small = RETRAIN_PRESETS["small"]
    assert small["lr_milestones"] == [80, 160, 240, 320] and small["steps"] == 400
