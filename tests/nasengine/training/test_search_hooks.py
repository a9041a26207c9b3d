"""Bi-level loop hooks: per-regulariser weights and ramps, the network's on_step hook (state
kept in the checkpoint), method-chosen optimisers and loss, CUDA peak reset per loop."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, TinySupernet, tiny_schedule  # noqa: E402

from nasengine.config import ConfigError, build_config  # noqa: E402
from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.common import reset_peak_memory, seed_everything  # noqa: E402
from nasengine.training.search_loop import SearchSchedule, run_bilevel_search, weighted_regularisers  # noqa: E402

CPU = torch.device("cpu")


class TwoTermSupernet(TinySupernet):
    """Two raw regularisers, so weights and ramps can differ per term."""

    def arch_regularisers(self):
        p = torch.softmax(self.alpha, 0)
        return {"entropy": -(p * torch.log(p)).sum(), "skip_share": p[0]}


class TemperatureSupernet(TinySupernet):
    """Gumbel-style temperature kept as a buffer and annealed by ``on_step`` (SCNAS)."""

    def __init__(self):
        super().__init__(1, 3, width=4)
        self.register_buffer("temperature", torch.tensor(1.0))
        self.calls: list[tuple[int, str]] = []

    def on_step(self, step: int, phase: str):
        self.calls.append((step, phase))
        if phase == "search":
            self.temperature.mul_(0.5)
        return {"temperature": self.temperature}

    def forward(self, x):
        h = self.stem(x)
        w = torch.softmax(self.alpha / self.temperature, 0)
        h = sum(w[i] * op(h) for i, op in enumerate(self.candidates))
        return self.head_out(self.head_up(self.dropout(h)))


def _search(tmp_path, net, sink, **kwargs):
    schedule = kwargs.pop("schedule", tiny_schedule(validate_every=0))
    return run_bilevel_search(net, train1=FakeLoader(seed=10), train2=FakeLoader(seed=20),
                              val_cases=[], schedule=schedule, reporter=Reporter([sink]),
                              checkpoint_dir=tmp_path, device=CPU, roi_size=(16, 16, 16),
                              **kwargs)


def test_regulariser_weights_and_ramps_per_term(tmp_path):
    seed_everything(0)
    sink = ListSink()
    schedule = tiny_schedule(validate_every=0, regulariser_weights={"skip_share": 2.0, "*": 0.5},
                             regulariser_ramps={"entropy": "linear"})
    _search(tmp_path, TwoTermSupernet(), sink, schedule=schedule)
    search_steps = [s for s in sink.of_type("step") if s["phase"] == "search"]
    assert [s["reg_scales"] for s in search_steps] == [
        {"entropy": 0.5 * t / 4, "skip_share": 2.0} for t in (1, 2, 3, 4)]
    for s in search_steps:
        losses, scales = s["losses"], s["reg_scales"]
        expected = losses["arch_seg"] + sum(scales[k] * losses[f"reg_{k}"] for k in scales)
        assert losses["arch"] == pytest.approx(expected, rel=1e-5)


def test_default_is_constant_weight_one_and_one_scale_is_bitwise_the_dints_sum():
    schedule = SearchSchedule(search_steps=4)
    assert schedule.regulariser_scale("anything", 1) == 1.0
    assert schedule.regulariser_scale("anything", 4) == 1.0
    linear = SearchSchedule(search_steps=4, regulariser_ramps={"*": "linear"})
    assert [linear.regulariser_scale("x", t) for t in (1, 2, 4)] == [0.25, 0.5, 1.0]
    regs = {"a": torch.tensor(0.1234567), "b": torch.tensor(3.3333), "c": torch.tensor(1e-3)}
    total, scales = weighted_regularisers(regs, linear, 3, CPU)
    reference = 0.75 * sum((r.float() for r in regs.values()), torch.zeros(()))
    assert scales == {"a": 0.75, "b": 0.75, "c": 0.75}
    assert torch.equal(total, reference)


def test_schedule_refuses_bad_ramps_and_negative_weights():
    with pytest.raises(ConfigError, match=r"regulariser_ramps\.entropy"):
        build_config(SearchSchedule, {"regulariser_ramps": {"entropy": "cubic"}})
    with pytest.raises(ConfigError, match=r"regulariser_weights\.memory"):
        build_config(SearchSchedule, {"regulariser_weights": {"memory": -1}})
    with pytest.raises(ValueError, match="regulariser_ramps"):
        SearchSchedule(regulariser_ramps={"*": "exp"})
    ok = build_config(SearchSchedule, {"regulariser_ramps": {"*": "linear"},
                                       "regulariser_weights": {"topology": 1}})
    assert ok.regulariser_weights == {"topology": 1.0}


def test_on_step_hook_metrics_and_its_buffer_resume_exactly(tmp_path):
    seed_everything(0)
    full = ListSink()
    net_a = TemperatureSupernet()
    _search(tmp_path / "a", net_a, full)
    # called before every step with the 0-based index of the step about to run and its phase
    assert net_a.calls == [(0, "warmup"), (1, "weights")] + [(i, "search") for i in range(2, 6)]
    assert [s["metrics"]["temperature"] for s in full.of_type("step")] == \
        [1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]

    seed_everything(0)
    sink = ListSink()
    token = CallableCancelToken(lambda: len(sink.of_type("step")) >= 3)
    with pytest.raises(Cancelled):
        _search(tmp_path / "b", TemperatureSupernet(), sink, cancel=token)
    state = ckpt.load(tmp_path / "b" / "checkpoint.pt")
    assert float(state["network"]["temperature"]) == 0.5  # buffers are in the checkpoint
    seed_everything(77)
    net_b = TemperatureSupernet()
    resumed = Reporter([sink])
    resumed.rewind(ckpt.latest_reporter_seq(tmp_path / "b"))
    run_bilevel_search(net_b, train1=FakeLoader(seed=10), train2=FakeLoader(seed=20),
                       val_cases=[], schedule=tiny_schedule(validate_every=0), reporter=resumed,
                       checkpoint_dir=tmp_path / "b", device=CPU, roi_size=(16, 16, 16),
                       resume=True)
    assert float(net_b.temperature) == float(net_a.temperature) == 0.0625
    steps = lambda es: [(e["step"], e["metrics"], e["losses"]) for e in es.of_type("step")]  # noqa: E731
    assert steps(sink) == steps(full)
    assert all(torch.equal(v, net_b.state_dict()[k]) for k, v in net_a.state_dict().items())


def test_method_chosen_optimisers_and_loss_are_used(tmp_path):
    seed_everything(0)
    calls = []

    def cross_entropy(logits, label):
        calls.append(tuple(logits.shape))
        return F.cross_entropy(logits.float(), label[:, 0])

    def make_optimisers(weights, arch):
        return torch.optim.Adam(weights, lr=1e-3), torch.optim.SGD(arch, lr=0.5)

    sink = ListSink()
    net = TinySupernet()
    _search(tmp_path, net, sink, make_optimisers=make_optimisers, loss_fn=cross_entropy)
    assert len(calls) == 6 + 4  # one per weight step, one per architecture step
    steps = sink.of_type("step")
    assert [s["lrs"].get("arch") for s in steps] == [None, None, 0.5, 0.5, 0.5, 0.5]
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert "exp_avg" in next(iter(state["weight_optimiser"]["state"].values()))  # Adam
    assert state["arch_optimiser"]["param_groups"][0]["lr"] == 0.5  # SGD at its own rate
    # the weight rate still follows the schedule (warm-up from lr_start)
    assert steps[0]["lrs"]["weights"] == pytest.approx(0.01)


def test_reset_peak_memory_is_a_no_op_off_cuda():
    reset_peak_memory(CPU)  # must not touch CUDA on a machine without it


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_each_loop_starts_a_fresh_cuda_peak(tmp_path):
    device = torch.device("cuda")
    big = torch.empty(256 * 2**20, dtype=torch.uint8, device=device)  # an earlier run's peak
    del big
    sink = ListSink()
    run_bilevel_search(TinySupernet(), train1=FakeLoader(), train2=FakeLoader(seed=1),
                       val_cases=[], schedule=tiny_schedule(search_steps=1),
                       reporter=Reporter([sink]), checkpoint_dir=tmp_path, device=device,
                       roi_size=(16, 16, 16))
    peaks = [s["memory_bytes"] for s in sink.of_type("step")]
    assert sink.of_type("step")[0]["memory_kind"] == "cuda_max_allocated"
    assert max(peaks) < 256 * 2**20
