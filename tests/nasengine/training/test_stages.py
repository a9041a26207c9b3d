"""Several loops (stages) on one run's event stream: numbering without loss, one checkpoint per
stage, and a resume inside the second stage that replays the uninterrupted run exactly."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, TinySupernet, fake_val_cases, tiny_schedule  # noqa: E402

from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter  # noqa: E402
from nasengine.genotype import build_network  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.common import seed_everything  # noqa: E402
from nasengine.training.retrain import RetrainConfig, train_from_scratch  # noqa: E402
from nasengine.training.search_loop import run_bilevel_search  # noqa: E402

CPU = torch.device("cpu")
NAMES = ["background", "organ", "lesion"]


@dataclasses.dataclass
class StageData:
    train: FakeLoader
    val_cases: list
    label_names: list


def _two_stage_run(checkpoint_dir: Path, reporter: Reporter, *, cancel=None,
                   resume: bool = False) -> tuple[torch.nn.Module, dict]:
    """Stage "search" (bi-level, first half of the run), then stage "train": the decoded
    network trained from scratch (second half), then the run's ``finished``."""
    seed_everything(0)
    supernet = TinySupernet(1, 3, width=4)
    genotype = run_bilevel_search(
        supernet, train1=FakeLoader(seed=10), train2=FakeLoader(seed=20), val_cases=[],
        schedule=tiny_schedule(validate_every=0), reporter=reporter,
        checkpoint_dir=checkpoint_dir, cancel=cancel, resume=resume, device=CPU,
        roi_size=(16, 16, 16), stage="search", progress_span=(0.0, 0.5), emit_finished=False)
    # drawn from the global RNG after stage 1: a resume must restore it to build the same one
    child = build_network(genotype)
    result = train_from_scratch(
        child, StageData(FakeLoader(seed=5), fake_val_cases(), NAMES),
        RetrainConfig(warmup_steps=1, steps=4, lr_milestones=(2,), validate_every=0,
                      checkpoint_every=2, export=False),
        reporter, checkpoint_dir, stage="train", candidate="c1", cancel=cancel, resume=resume,
        device=CPU, progress_span=(0.5, 1.0))
    reporter.emit("finished", mean_dice=result["mean_dice"])
    return child, result


def _run_reporter(sink: ListSink, checkpoint_dir: Path, resume: bool) -> Reporter:
    """What ``nasengine.api`` does for a run: rewind once, to the newest stage checkpoint."""
    reporter = Reporter([sink])
    seq = ckpt.latest_reporter_seq(checkpoint_dir) if resume else None
    reporter.rewind(seq if seq is not None else 0)
    return reporter


def _steps(events):
    keys = ("stage", "candidate", "step", "total_steps", "progress", "phase", "losses", "lrs",
            "metrics")
    return [{k: e.get(k) for k in keys} for e in events if e["type"] == "step"]


def test_two_loops_share_one_stream_and_keep_every_event(tmp_path):
    sink = ListSink()
    _two_stage_run(tmp_path / "ckpt", _run_reporter(sink, tmp_path / "ckpt", False))
    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))
    starts = sink.of_type("run_started")
    assert [(e["stage"], e["phase"]) for e in starts] == [("search", "search"),
                                                           ("train", "retrain")]
    steps = sink.of_type("step")
    assert [(s["stage"], s["step"]) for s in steps] == \
        [("search", i) for i in range(1, 7)] + [("train", i) for i in range(1, 6)]
    # progress: stage-local steps mapped onto the run's halves
    assert [s["progress"] for s in steps] == pytest.approx(
        [i / 12 for i in range(1, 7)] + [0.5 + i / 10 for i in range(1, 6)])
    assert all(s.get("candidate") == "c1" for s in steps if s["stage"] == "train")
    assert all("candidate" not in s for s in steps if s["stage"] == "search")
    # only the run ends the run: one finished, at the very end
    assert [e["type"] for e in sink].count("finished") == 1 and sink[-1]["type"] == "finished"
    assert sorted(p.name for p in ckpt.stage_files(tmp_path / "ckpt")) == ["search.pt",
                                                                          "train.pt"]
    assert ckpt.latest_reporter_seq(tmp_path / "ckpt") == sink.of_type("checkpoint")[-1]["seq"]


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("interruption", ["cancel_mid_stage_2", "crash_before_stage_2_ckpt"])
def test_resume_inside_the_second_stage_replays_exactly(tmp_path, interruption):
    full = ListSink()
    net_a, result_a = _two_stage_run(tmp_path / "a", _run_reporter(full, tmp_path / "a", False))

    sink = ListSink()
    ckpt_b = tmp_path / "b"
    if interruption == "cancel_mid_stage_2":
        token = CallableCancelToken(lambda: any(
            e["type"] == "step" and e["stage"] == "train" and e["step"] == 3 for e in sink))
        with pytest.raises(Cancelled):
            _two_stage_run(ckpt_b, _run_reporter(sink, ckpt_b, False), cancel=token)
        assert sink[-1]["type"] == "cancelled" and sink[-1]["stage"] == "train"
    else:
        def crash(event):
            if event["type"] == "step" and event["stage"] == "train":
                raise Crash("worker died")

        reporter = _run_reporter(sink, ckpt_b, False)
        reporter.add_sink(crash)
        with pytest.raises(Crash):
            _two_stage_run(ckpt_b, reporter)
        assert not (ckpt_b / "train.pt").exists()  # only stage 1's checkpoint survives

    # a new process: other RNG states, fresh objects, the same sink (stored events)
    seed_everything(4321)
    torch.rand(3)
    net_b, result_b = _two_stage_run(ckpt_b, _run_reporter(sink, ckpt_b, True), resume=True)

    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))
    assert "cancelled" not in [e["type"] for e in sink]
    assert _steps(sink) == _steps(full)
    assert result_a == result_b
    a, b = net_a.state_dict(), net_b.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # stage 1 was complete: its loop added nothing on resume; stage 2 started once more
    starts = [(e["stage"], e["resumed_from_step"]) for e in sink.of_type("run_started")]
    resumed_at = 3 if interruption == "cancel_mid_stage_2" else None
    assert starts == [("search", None), ("train", None)] + (
        [("train", resumed_at)] if resumed_at else [])
    if resumed_at is None:  # the crash lost no checkpointed event: the streams are equal
        strip = lambda es: [{k: v for k, v in e.items()  # noqa: E731
                             if k not in ("time", "seconds", "memory_bytes", "device", "path")}
                            for e in es]
        assert strip(sink) == strip(full)


def test_a_loop_never_rewinds_the_reporter(tmp_path):
    sink = ListSink()
    reporter = Reporter([sink])
    reporter.emit("c2fnas.candidate_started", candidate="x")  # the method's own event first
    run_bilevel_search(TinySupernet(), train1=FakeLoader(), train2=FakeLoader(seed=1),
                       val_cases=[], schedule=tiny_schedule(), reporter=reporter,
                       checkpoint_dir=tmp_path, device=CPU, roi_size=(16, 16, 16))
    assert sink[0]["type"] == "c2fnas.candidate_started" and sink[1]["seq"] == 2
    assert [e["seq"] for e in sink] == list(range(1, len(sink) + 1))
