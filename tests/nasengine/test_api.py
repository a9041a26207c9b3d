"""Typed API: default reporter/events file, failure events, resume without checkpoint."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "training"))
from engine_fakes import FakeMethod, tiny_genotype  # noqa: E402

import nasengine  # noqa: E402
from nasengine import api  # noqa: E402
from nasengine.config import ConfigError  # noqa: E402
from nasengine.data import DataError  # noqa: E402
from nasengine.events import ListSink, Reporter, read_events  # noqa: E402
from nasengine.methods import register, unregister  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return nasengine.make_demo_data(tmp_path_factory.mktemp("api") / "demo", n_cases=3)


@pytest.fixture
def fake():
    register(FakeMethod())
    yield "fake"
    unregister("fake")


def test_public_api_is_reexported():
    for name in ("list_methods", "make_demo_data", "estimate", "search", "retrain", "predict"):
        assert getattr(nasengine, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        nasengine.nothing_here  # noqa: B018


def test_search_writes_events_and_resume_without_checkpoint_starts_fresh(tmp_path, demo, fake):
    genotype = api.search("fake", demo, tmp_path / "s", "tiny", {"search_steps": 1},
                          resume=True)
    assert genotype["method"] == "fake"
    events = read_events(tmp_path / "s" / "events.jsonl")
    assert events[0]["type"] == "run_started" and events[0]["resumed_from_step"] is None
    assert events[-1]["type"] == "finished"
    # a second fresh run replaces the event log instead of appending duplicate seqs
    api.search("fake", demo, tmp_path / "s", "tiny", {"search_steps": 1})
    again = read_events(tmp_path / "s" / "events.jsonl")
    assert [e["seq"] for e in again] == list(range(1, len(again) + 1))
    assert len(again) == len(events)
    # resuming a finished run returns the same genotype without training again
    sink = ListSink()
    assert api.search("fake", demo, tmp_path / "s", "tiny", {"search_steps": 1},
                      reporter=Reporter([sink]), resume=True) == genotype
    assert sink.of_type("step") == [] and sink[-1]["type"] == "finished"


def test_failures_emit_failed_event(tmp_path, demo, fake):
    sink = ListSink()
    with pytest.raises(DataError):
        api.search("fake", tmp_path / "nowhere", tmp_path / "s", "tiny",
                   reporter=Reporter([sink]))
    assert [e["type"] for e in sink] == ["failed"] and "dataset.json" in sink[0]["reason"]
    with pytest.raises(ConfigError, match="genotype: the architecture takes 2 channel"):
        api.retrain(tiny_genotype(in_channels=2), demo, tmp_path / "m", "tiny",
                    reporter=Reporter([sink]))
    assert sink[-1]["type"] == "failed"


def test_retrain_api_accepts_a_document(tmp_path, demo):
    out = api.retrain(tiny_genotype(), demo, tmp_path / "m", "tiny",
                      {"patch_size": [16, 16, 16], "export": False, "steps": 2,
                       "lr_milestones": [1]})
    assert (out / "bundle.json").exists() and (out / "events.jsonl").exists()
    bundle = nasengine.inference.read_bundle(out)
    assert bundle.info["source"]["dataset"] == "VoxelSearchDemo"
    assert len(bundle.info["source"]["val_cases"]) == 1


def test_bad_settings_emit_failed_event_too(tmp_path, demo, fake):
    sink = ListSink()
    with pytest.raises(ConfigError, match="search_steps"):
        api.search("fake", demo, tmp_path / "s", "tiny", {"search_steps": "many"},
                   reporter=Reporter([sink]))
    assert sink[-1]["type"] == "failed" and sink[-1]["error"] == "ConfigError"
    assert sink[-1]["reason"].startswith("search_steps: must be")


def test_search_resume_through_api_with_real_data_pipeline_is_exact(tmp_path, demo, fake):
    """PatchLoader state, seeding and reporter seq survive a cancel + resume via the API."""
    import torch

    from nasengine.events import CallableCancelToken, Cancelled

    overrides = {"search_steps": 3, "checkpoint_every": 0}
    api.search("fake", demo, tmp_path / "a", "tiny", overrides)
    steps = []
    token = CallableCancelToken(lambda: len(steps) >= 2)
    with pytest.raises(Cancelled):
        api.search("fake", demo, tmp_path / "b", "tiny", overrides,
                   reporter=Reporter([lambda e: steps.append(e) if e["type"] == "step" else None,
                                      nasengine.events.JsonLinesSink(tmp_path / "b" / "events.jsonl")]),
                   cancel=token)
    torch.manual_seed(5)  # the resumed process starts from other RNG states
    api.search("fake", demo, tmp_path / "b", "tiny", overrides, resume=True)
    a = torch.load(tmp_path / "a" / "checkpoints" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 5
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])
    assert a["train1"] == b["train1"] and a["train2"] == b["train2"]
    events = read_events(tmp_path / "b" / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    strip = lambda es: [(e["step"], e["losses"]) for e in es if e["type"] == "step"]  # noqa: E731
    assert strip(events) == strip(read_events(tmp_path / "a" / "events.jsonl"))


@pytest.mark.parametrize("preset", ["paper", "small", "tiny"])
def test_retrain_presets_validate(preset):
    config = api.make_retrain_config(preset)
    assert config.total_steps > 0
    assert api.retrain_schema()["x-presets"][preset] is not None
