"""Reporter numbering and rewind, JSON-lines/progress/list/callable sinks, cancel tokens."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from nasengine.events import (
    ARCHITECTURE,
    EVENT_TYPES,
    CallableCancelToken,
    Cancelled,
    CancelToken,
    FileCancelToken,
    JsonLinesSink,
    ListSink,
    ProgressBarSink,
    Reporter,
    as_cancel_token,
    is_event_type,
    read_events,
)


def test_reporter_numbers_from_one_and_adds_time_and_type():
    got = []
    reporter = Reporter([got.append], clock=lambda: 123.5)
    first = reporter.emit("run_started", phase="search")
    reporter.emit("step", step=1, losses={"seg": torch.tensor(0.5)}, shape=(1, 2))
    assert first == {"seq": 1, "type": "run_started", "time": 123.5, "phase": "search"}
    assert [e["seq"] for e in got] == [1, 2]
    assert got[1]["losses"] == {"seg": 0.5} and got[1]["shape"] == [1, 2]
    json.dumps(got)  # payload is JSON-able
    assert reporter.seq == 2


def test_reporter_payload_is_json_safe():
    got = ListSink()
    Reporter([got]).emit("validation", dice={"organ": np.float32(0.25), "lesion": float("nan")},
                         mean_dice=np.float64(0.25))
    assert got[0]["dice"] == {"organ": 0.25, "lesion": None}
    json.dumps(got[0], allow_nan=False)


def test_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type"):
        Reporter().emit("stepp")
    assert "architecture" in EVENT_TYPES and ARCHITECTURE == "architecture"


def test_namespaced_method_events_pass_and_malformed_types_are_refused():
    sink = ListSink()
    reporter = Reporter([sink])
    reporter.emit("scnas.sampled_ops", step=3, counts={"conv_3x3x3": 2})
    reporter.emit("c2fnas.candidate_finished", candidate="ab12", mean_dice=0.5)
    assert [(e["seq"], e["type"]) for e in sink] == [(1, "scnas.sampled_ops"),
                                                     (2, "c2fnas.candidate_finished")]
    assert sink[0]["counts"] == {"conv_3x3x3": 2}
    for bad in ("Scnas.sampled", "scnas.", ".sampled", "scnas.sampled.ops", "scnas-x.y",
                "scnas.Sampled", "1scnas.x", "scnas.x y", ""):
        assert not is_event_type(bad), bad
        with pytest.raises(ValueError, match="namespaced"):
            reporter.emit(bad)
    assert reporter.seq == 2  # a refused event takes no number
    assert all(is_event_type(t) for t in EVENT_TYPES)


def test_rewind_continues_numbering_and_sinks_drop_later_events(tmp_path):
    listed = ListSink()
    file_sink = JsonLinesSink(tmp_path / "events.jsonl")
    reporter = Reporter([listed, file_sink, lambda e: None])  # plain callables have no rewind
    for i in range(5):
        reporter.emit("step", step=i + 1)
    reporter.rewind(3)
    assert [e["seq"] for e in listed] == [1, 2, 3]
    assert [e["seq"] for e in read_events(tmp_path / "events.jsonl")] == [1, 2, 3]
    assert reporter.emit("step", step=4)["seq"] == 4
    assert [e["seq"] for e in read_events(tmp_path / "events.jsonl")] == [1, 2, 3, 4]
    reporter.rewind(0)
    assert read_events(tmp_path / "events.jsonl") == [] and listed == []


def test_json_lines_sink_appends_across_instances_and_skips_torn_line(tmp_path):
    path = tmp_path / "sub" / "events.jsonl"
    sink = JsonLinesSink(path)
    sink({"seq": 1, "type": "step"})
    sink.close()
    sink2 = JsonLinesSink(path)
    sink2({"seq": 2, "type": "step"})
    sink2.close()
    with path.open("a") as fh:
        fh.write('{"seq": 3, "ty')  # crash mid-write
    assert [e["seq"] for e in read_events(path)] == [1, 2]
    sink2.rewind(5)
    assert path.read_text().count("\n") == 2 and path.read_text().endswith("\n")
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_progress_bar_sink_shows_steps_total_and_losses():
    stream = io.StringIO()
    reporter = Reporter([ProgressBarSink(stream, disable=False)])
    reporter.emit("run_started", phase="search", total_steps=4, device="cpu")
    for i in range(1, 4):
        reporter.emit("step", step=i, total_steps=4, phase="search", losses={"seg": 0.123})
    reporter.emit("validation", step=3, dice={"organ": 0.5}, mean_dice=0.5)
    reporter.emit("cancelled", step=3)
    text = stream.getvalue()
    assert "3/4" in text
    assert "seg=0.123" in text
    assert "validation at step 3: organ 0.500" in text
    assert "cancelled at step 3" in text


def test_cancel_tokens(tmp_path):
    token = CancelToken()
    assert not token.is_cancelled()
    token.cancel()
    assert token.is_cancelled()
    flag = tmp_path / "cancel"
    file_token = FileCancelToken(flag)
    assert not file_token.is_cancelled()
    flag.touch()
    assert file_token.is_cancelled()
    state = {"stop": False}
    fn_token = CallableCancelToken(lambda: state["stop"])
    assert not fn_token.is_cancelled()
    state["stop"] = True
    assert fn_token.is_cancelled()
    assert isinstance(as_cancel_token(None), CancelToken)
    assert not as_cancel_token(None).is_cancelled()
    assert isinstance(as_cancel_token(str(flag)), FileCancelToken)
    assert as_cancel_token(lambda: True).is_cancelled()
    exc = Cancelled(7, "/x/checkpoint.pt")
    assert exc.step == 7 and "step 7" in str(exc)


def test_progress_sink_writes_plain_status_lines_when_not_a_terminal():
    stream = io.StringIO()  # not a TTY: tqdm stays silent
    reporter = Reporter([ProgressBarSink(stream)])
    reporter.emit("run_started", phase="retrain", total_steps=20, device="cpu")
    for i in range(1, 21):
        reporter.emit("step", step=i, total_steps=20, phase="train", losses={"seg": 0.25})
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("train ")]
    assert len(lines) == 10 and lines[-1].startswith("train 20/20 seg 0.250 eta 0:00:00")
    assert "\r" not in stream.getvalue()


def test_progress_sink_names_each_stage_and_restarts_its_count():
    stream = io.StringIO()  # not a TTY: plain status lines
    reporter = Reporter([ProgressBarSink(stream)])
    for stage, candidate in (("coarse", "ab12"), ("fine", None)):
        tags = {"stage": stage, **({"candidate": candidate} if candidate else {})}
        reporter.emit("run_started", phase="retrain", total_steps=10, device="cpu", **tags)
        for i in range(1, 11):
            reporter.emit("step", step=i, total_steps=10, phase="train", losses={"seg": 0.5},
                          **tags)
    lines = stream.getvalue().splitlines()
    assert "coarse [ab12] retrain: 10 steps on cpu" in lines[0]
    assert any(line.startswith("coarse [ab12] train 10/10 ") for line in lines)
    assert any(line.startswith("fine train 1/10 ") for line in lines)  # counted afresh
    assert any(line.startswith("fine train 10/10 ") for line in lines)
