"""Bi-level search loop: phases, events, exact resume, cancel, AMP off on CPU."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, TinySupernet, fake_val_cases, tiny_schedule  # noqa: E402

from nasengine.events import CallableCancelToken, Cancelled, JsonLinesSink, ListSink, Reporter, read_events  # noqa: E402
from nasengine.genotype import validate  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.common import amp_enabled, seed_everything  # noqa: E402
from nasengine.training.search_loop import run_bilevel_search  # noqa: E402

CPU = torch.device("cpu")


def _setup(seed: int = 0):
    seed_everything(seed)
    net = TinySupernet(1, 3, width=4)
    return net, FakeLoader(seed=10), FakeLoader(seed=20)


def _run(tmp_path, net, t1, t2, *, schedule, sink, cancel=None, resume=False):
    return run_bilevel_search(net, train1=t1, train2=t2, val_cases=fake_val_cases(),
                              schedule=schedule, reporter=Reporter([sink]),
                              checkpoint_dir=tmp_path / "ckpt", cancel=cancel, resume=resume,
                              device=CPU, label_names=["background", "organ", "lesion"])


def _comparable_steps(events):
    return [(e["step"], e["phase"], e["losses"], e["lrs"]) for e in events if e["type"] == "step"]


def test_search_phases_events_and_genotype(tmp_path):
    net, t1, t2 = _setup()
    sink = ListSink()
    schedule = tiny_schedule(regulariser_ramps={"*": "linear"})  # DiNTS's eq. 11 ramp
    genotype = _run(tmp_path, net, t1, t2, schedule=schedule, sink=sink)
    validate(genotype)
    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))
    assert sink[0]["type"] == "run_started" and sink[-1]["type"] == "finished"
    assert sink[0]["amp"] is False
    steps = sink.of_type("step")
    assert [s["phase"] for s in steps] == ["warmup", "weights"] + ["search"] * 4
    # architecture steps only in the search phase, with the t/t_all-weighted regulariser logged
    assert all("arch" not in s["losses"] for s in steps[:2])
    assert all({"seg", "arch", "arch_seg", "reg_entropy"} <= set(s["losses"]) for s in steps[2:])
    # eq. 11: L_arch = L_seg + t/t_all * sum(regularisers), t counting architecture steps
    assert [s["reg_scales"] for s in steps] == [None, None] + [
        {"entropy": v} for v in (0.25, 0.5, 0.75, 1.0)]
    for s in steps[2:]:
        expected = s["losses"]["arch_seg"] + s["reg_scales"]["entropy"] * s["losses"]["reg_entropy"]
        assert s["losses"]["arch"] == pytest.approx(expected, rel=1e-5)
    # learning rates: warm-up from lr_start, peak afterwards, decay at milestone 3 after warm-up
    assert [s["lrs"]["weights"] for s in steps] == pytest.approx(
        [0.01, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert all(s["memory_bytes"] > 0 and s["memory_kind"] == "rss" for s in steps)
    # snapshots at step 0 and every 2 steps, continuous genotypes with op weights
    snaps = sink.of_type("architecture")
    assert [a["step"] for a in snaps] == [0, 2, 4, 6]
    assert all(a["genotype"]["continuous"] for a in snaps)
    assert snaps[0]["genotype"]["edges"][1]["op_weights"] == {"skip": 0.5, "conv_3x3x3": 0.5}
    assert snaps[-1]["genotype"]["edges"][1]["op_weights"] != {"skip": 0.5, "conv_3x3x3": 0.5}
    vals = sink.of_type("validation")
    assert [v["step"] for v in vals] == [3, 6]
    assert set(vals[0]["dice"]) == {"organ", "lesion"}
    assert [c["step"] for c in sink.of_type("checkpoint")] == [2, 4, 6]
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()


def test_arch_parameters_only_change_in_search_phase(tmp_path):
    net, t1, t2 = _setup()
    schedule = tiny_schedule(search_steps=0, weight_only_steps=2)
    before = net.alpha.detach().clone()
    _run(tmp_path, net, t1, t2, schedule=schedule, sink=ListSink())
    assert torch.equal(net.alpha.detach(), before)
    net2, t1, t2 = _setup()
    _run(tmp_path / "b", net2, t1, t2, schedule=tiny_schedule(), sink=ListSink())
    assert not torch.equal(net2.alpha.detach(), before)


def test_resume_is_bitwise_identical(tmp_path):
    schedule = tiny_schedule()
    k = 3  # stop mid-search, between checkpoints (the cancel writes one)
    net_a, t1, t2 = _setup()
    sink_a = ListSink()
    genotype_a = _run(tmp_path / "a", net_a, t1, t2, schedule=schedule, sink=sink_a)

    events_b = JsonLinesSink(tmp_path / "b" / "events.jsonl")
    net_b, t1, t2 = _setup()
    steps_done = []
    token = CallableCancelToken(lambda: len(steps_done) >= k)
    reporter_sinks = [events_b, lambda e: steps_done.append(e) if e["type"] == "step" else None]
    with pytest.raises(Cancelled) as info:
        run_bilevel_search(net_b, train1=t1, train2=t2, val_cases=fake_val_cases(),
                           schedule=schedule, reporter=Reporter(reporter_sinks),
                           checkpoint_dir=tmp_path / "b" / "ckpt", cancel=token, device=CPU,
                           label_names=["background", "organ", "lesion"])
    assert info.value.step == k
    # a new process: fresh objects, RNGs disturbed, then resume
    seed_everything(1234)
    torch.rand(7)
    net_c, t1, t2 = TinySupernet(1, 3, width=4), FakeLoader(seed=10), FakeLoader(seed=20)
    resumed = Reporter([JsonLinesSink(tmp_path / "b" / "events.jsonl")])
    resumed.rewind(ckpt.latest_reporter_seq(tmp_path / "b" / "ckpt"))  # the run's job
    genotype_c = run_bilevel_search(
        net_c, train1=t1, train2=t2, val_cases=fake_val_cases(), schedule=schedule,
        reporter=resumed,
        checkpoint_dir=tmp_path / "b" / "ckpt", resume=True, device=CPU,
        label_names=["background", "organ", "lesion"])

    state_a, state_c = net_a.state_dict(), net_c.state_dict()
    assert state_a.keys() == state_c.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_c[name]), name
    assert genotype_a == genotype_c
    events = read_events(tmp_path / "b" / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "cancelled" not in [e["type"] for e in events]  # rewound away
    assert _comparable_steps(events) == _comparable_steps(sink_a)
    assert [e["type"] for e in events].count("run_started") == 2
    assert events[-1]["type"] == "finished"


def test_cancel_stops_between_steps_and_checkpoints(tmp_path):
    net, t1, t2 = _setup()
    sink = ListSink()
    token = CallableCancelToken(lambda: len(sink.of_type("step")) >= 1)
    with pytest.raises(Cancelled) as info:
        _run(tmp_path, net, t1, t2, schedule=tiny_schedule(), sink=sink, cancel=token)
    assert info.value.step == 1
    assert len(sink.of_type("step")) == 1
    assert [e["type"] for e in sink[-2:]] == ["checkpoint", "cancelled"]
    state = ckpt.load(tmp_path / "ckpt" / "checkpoint.pt")
    assert state["step"] == 1
    assert state["reporter_seq"] == sink[-2]["seq"]  # the checkpoint event survives a resume
    assert torch.equal(state["network"]["alpha"], net.alpha.detach())


def test_amp_is_disabled_on_cpu(tmp_path):
    assert amp_enabled(True, torch.device("cpu")) is False
    assert amp_enabled(True, torch.device("cuda")) is True
    assert amp_enabled(False, torch.device("cuda")) is False
    net, t1, t2 = _setup()
    sink = ListSink()
    _run(tmp_path, net, t1, t2, schedule=tiny_schedule(amp=True, search_steps=1), sink=sink)
    assert net.autocast_seen and not any(net.autocast_seen)
    assert sink[0]["amp"] is False
    state = ckpt.load(tmp_path / "ckpt" / "checkpoint.pt")
    assert state["weight_scaler"] == {}  # a disabled GradScaler has no state


def test_schedule_accepts_mapping_and_rejects_bad_values(tmp_path):
    from nasengine.config import ConfigError

    net, t1, t2 = _setup()
    with pytest.raises(ConfigError, match="warmup_steps"):
        _run(tmp_path, net, t1, t2, schedule={"warmup_steps": -1}, sink=ListSink())


def test_architecture_events_stay_small_at_paper_size():
    """A 12-layer, 4-level DiNTS snapshot must stay far below the channel layer's limit."""
    import json

    from nasengine.methods import get_method
    from nasengine.training.common import compact_genotype

    dints = get_method("dints")  # a missing or broken DiNTS fails here, never skips
    config = dints.make_config("paper", {"stem_filters": 1})  # snapshot size ignores filters
    net = dints.build_supernet(config, 1, 3)
    assert (config.num_layers, config.num_depths) == (12, 4)
    event = Reporter([]).emit("architecture", step=0, genotype=compact_genotype(net.snapshot()))
    assert len(json.dumps(event)) < 64 * 1024
