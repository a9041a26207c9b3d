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


# ----------------------------------------------------------------------------- issue 7

import dataclasses  # noqa: E402

import engine_fakes  # noqa: E402
from engine_fakes import TinySupernet  # noqa: E402

from nasengine.config import setting  # noqa: E402
from nasengine.events import CallableCancelToken, Cancelled  # noqa: E402
from nasengine.methods import UnknownMethodError  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.retrain import RetrainConfig, train_from_scratch  # noqa: E402
from nasengine.training.search_loop import run_bilevel_search  # noqa: E402


@dataclasses.dataclass
class DeepRetrainConfig(RetrainConfig):
    """Retraining with an extra, method-specific knob."""

    deep_supervision: bool = setting(False, "Auxiliary losses at the coarse levels")


class RetrainingFake(FakeMethod):
    """A method with its own retraining settings and paper preset."""

    name = "fake_rt"
    retrain_config_class = DeepRetrainConfig
    retrain_presets = {"paper": {"steps": 123}, "tiny": {"warmup_steps": 1, "steps": 2,
                                                        "lr_milestones": [1],
                                                        "deep_supervision": True,
                                                        "patch_size": [16, 16, 16],
                                                        "validate_every": 0, "export": False}}


class TwoStageFake(FakeMethod):
    """Chains two loops in one run: the bi-level search (first 60%), then the decoded network
    trained from scratch on a loader from the data factory (last 40%)."""

    name = "fake_two"

    def search(self, data, config, reporter, checkpoint_dir, cancel=None, resume=False):
        net = TinySupernet(data.in_channels, data.out_channels, config.width)
        genotype = run_bilevel_search(
            net, train1=data.train1, train2=data.train2, val_cases=data.val_cases,
            schedule=self.search_schedule(config), reporter=reporter,
            checkpoint_dir=checkpoint_dir, cancel=cancel, resume=resume, device=data.device,
            roi_size=config.patch_size, label_names=data.label_names, stage="search",
            progress_span=(0.0, 0.6), emit_finished=False)
        child = self.build_network(genotype)
        train = data.factory.loader(data.factory.train_ids, seed=42, batch_size=1)
        stage_data = dataclasses.make_dataclass("D", ["train", "val_cases", "label_names"])(
            train, data.val_cases, data.label_names)
        result = train_from_scratch(
            child, stage_data, RetrainConfig(warmup_steps=1, steps=3, lr_milestones=(),
                                             validate_every=0, checkpoint_every=0,
                                             export=False),
            reporter, checkpoint_dir, stage="polish", cancel=cancel, resume=resume,
            device=data.device, roi_size=config.patch_size, progress_span=(0.6, 1.0))
        reporter.emit("fake_two.polished", mean_dice=result["mean_dice"])
        reporter.emit("finished", genotype=genotype)
        return genotype


@pytest.fixture
def extra_methods():
    register(RetrainingFake())
    register(TwoStageFake())
    yield
    unregister("fake_rt")
    unregister("fake_two")


def test_retraining_settings_come_from_the_genotypes_method(tmp_path, demo, extra_methods):
    schema = api.retrain_schema("fake_rt")
    assert "deep_supervision" in schema["properties"]
    # a method's own "paper" preset keeps the paper's recipe; its own fields stay as declared
    assert schema["x-presets"]["paper"] == {"steps": 123, "recipe": "paper"}
    assert "deep_supervision" not in api.retrain_schema()["properties"]  # the shared one
    assert api.make_retrain_config("paper", method="fake_rt").steps == 123
    assert api.make_retrain_config("paper").steps == 40000
    with pytest.raises(UnknownMethodError):
        api.retrain_schema("nope")
    described = next(m for m in api.list_methods() if m["name"] == "fake_rt")
    assert described["retrain_schema"] == schema
    # the genotype says fake_rt: its tiny preset (with its own setting) is used
    out = api.retrain(tiny_genotype(method="fake_rt"), demo, tmp_path / "m", "tiny",
                      {"deep_supervision": False})
    info = nasengine.inference.read_bundle(out).info
    assert info["source"]["retrain"]["deep_supervision"] is False
    assert info["source"]["retrain"]["steps"] == 2 and info["source"]["retrain_settings"] == "fake_rt"
    # a method-specific setting is refused under the shared settings
    with pytest.raises(ConfigError, match="deep_supervision: unknown setting"):
        api.retrain(tiny_genotype(), demo, tmp_path / "m2", "tiny", {"deep_supervision": True},
                    method=None)


def test_a_fresh_run_continues_a_reporter_that_has_already_emitted(tmp_path, demo, fake):
    sink = ListSink()
    reporter = Reporter([sink])
    reporter.emit("fake.prelude", note="the caller's own event")
    api.search("fake", demo, tmp_path / "s", "tiny", {"search_steps": 1}, reporter=reporter)
    assert sink[0]["type"] == "fake.prelude"
    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))


def test_two_stage_method_resumes_inside_its_second_stage_through_the_api(tmp_path, demo,
                                                                         extra_methods):
    import torch

    overrides = {"search_steps": 2, "checkpoint_every": 0, "validate_every": 0}
    api.search("fake_two", demo, tmp_path / "a", "tiny", overrides)
    full = read_events(tmp_path / "a" / "events.jsonl")
    assert [e["seq"] for e in full] == list(range(1, len(full) + 1))
    assert [e["type"] for e in full][-2:] == ["fake_two.polished", "finished"]
    assert {e["stage"] for e in full if e["type"] == "step"} == {"search", "polish"}
    assert [e["progress"] for e in full if e["type"] == "step"][-1] == pytest.approx(1.0)

    steps = []
    token = CallableCancelToken(lambda: any(e.get("stage") == "polish" and e["step"] == 2
                                            for e in steps))
    assert not api.checkpoint_exists(tmp_path / "b")
    with pytest.raises(Cancelled):
        api.search("fake_two", demo, tmp_path / "b", "tiny", overrides,
                   reporter=Reporter([lambda e: steps.append(e) if e["type"] == "step" else None,
                                      nasengine.events.JsonLinesSink(tmp_path / "b" / "events.jsonl")]),
                   cancel=token)
    assert api.checkpoint_exists(tmp_path / "b")
    stages = sorted(p.name for p in ckpt.stage_files(tmp_path / "b" / "checkpoints"))
    assert stages == ["polish.pt", "search.pt"]
    torch.manual_seed(5)
    api.search("fake_two", demo, tmp_path / "b", "tiny", overrides, resume=True)
    events = read_events(tmp_path / "b" / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "cancelled" not in [e["type"] for e in events]
    strip = lambda es: [(e["stage"], e["step"], e["losses"], e["progress"])  # noqa: E731
                        for e in es if e["type"] == "step"]
    assert strip(events) == strip(full)
    a = torch.load(tmp_path / "a" / "checkpoints" / "polish.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "polish.pt", weights_only=True)
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])


@dataclasses.dataclass
class SplitConfig(engine_fakes.FakeConfig):
    """Fake settings with SCNAS's 4:1 weights/architecture split."""

    arch_split: tuple[float, float] = setting((4, 1), "Weights : architecture cases",
                                              minimum=0.1)


class SplitFake(FakeMethod):
    name = "fake_split"
    config_class = SplitConfig


def test_a_method_chooses_its_weights_architecture_split(tmp_path_factory):
    import json

    demo6 = nasengine.make_demo_data(tmp_path_factory.mktemp("api6") / "demo", n_cases=6)
    register(SplitFake())
    try:
        out = tmp_path_factory.mktemp("split")
        api.search("fake_split", demo6, out, "tiny", {"search_steps": 1})
    finally:
        unregister("fake_split")
    splits = json.loads((out / "splits.json").read_text())
    assert len(splits["train"]) == 5
    assert (len(splits["train1"]), len(splits["train2"])) == (4, 1)
    assert splits["train1"] + splits["train2"] == splits["train"]


def test_a_fresh_run_drops_an_earlier_runs_stage_checkpoints(tmp_path, demo, extra_methods):
    out = tmp_path / "s"
    stale = ckpt.stage_path(out / api.CHECKPOINT_DIR, "coarse")
    ckpt.save(stale, {"kind": "retrain", "reporter_seq": 10_000})  # left by an earlier run
    api.search("fake_two", demo, out, "tiny", {"search_steps": 1, "validate_every": 0})
    assert not stale.exists()
    # a later resume rewinds to this run's newest checkpoint, not the earlier run's
    last_checkpoint = [e for e in read_events(out / "events.jsonl") if e["type"] == "checkpoint"][-1]
    assert ckpt.latest_reporter_seq(out / api.CHECKPOINT_DIR) == last_checkpoint["seq"]
