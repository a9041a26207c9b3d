"""The search reports how far its architecture weights moved: normalised entropy of the edge
and op weights in the architecture events and, initial and final, in ``finished`` (also
after a resume)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, TinySupernet, fake_val_cases, tiny_schedule  # noqa: E402

from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.common import seed_everything  # noqa: E402
from nasengine.training.search_loop import arch_entropy, run_bilevel_search  # noqa: E402


class _Lattice(nn.Module):
    def __init__(self, edge, op):
        super().__init__()
        self.edge_logits = nn.Parameter(torch.as_tensor(edge, dtype=torch.float32))
        self.op_logits = nn.Parameter(torch.as_tensor(op, dtype=torch.float32))


def test_entropy_is_one_when_uniform_and_near_zero_when_decided():
    uniform = arch_entropy(_Lattice(torch.zeros(2, 3), torch.zeros(2, 3, 4)))
    assert uniform == {"edge": pytest.approx(1.0), "op": pytest.approx(1.0)}
    decided = arch_entropy(_Lattice(torch.full((2, 3), 12.0),
                                    torch.tensor([20.0, 0, 0, 0]).expand(2, 3, 4)))
    assert decided["edge"] < 1e-3 and decided["op"] < 1e-6
    half = arch_entropy(_Lattice([math.log(3.0)], [[0.0, 0.0]]))  # p = 0.75
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert half["edge"] == pytest.approx(expected, abs=1e-6)
    assert arch_entropy(nn.Linear(2, 2)) is None


class _Entropic(TinySupernet):
    """The fake supernet with an entropy of its single op choice."""

    def arch_entropy(self):
        q = torch.softmax(self.alpha.detach(), 0)
        return {"op": float(-(q * q.log()).sum() / math.log(len(q)))}


def _run(tmp_path, sink, cancel=None, resume=False):
    seed_everything(0)
    return run_bilevel_search(_Entropic(1, 3, width=4), train1=FakeLoader(seed=10),
                              train2=FakeLoader(seed=20), val_cases=fake_val_cases(),
                              schedule=tiny_schedule(), reporter=Reporter([sink]),
                              checkpoint_dir=tmp_path, cancel=cancel, resume=resume,
                              device=torch.device("cpu"))


def test_search_events_carry_the_entropy_and_a_resume_keeps_the_initial_one(tmp_path):
    sink = ListSink()
    _run(tmp_path / "a", sink)
    architecture = sink.of_type("architecture")
    assert architecture[0]["arch_entropy"]["op"] == pytest.approx(1.0)
    final = sink.of_type("finished")[0]["arch_entropy"]
    assert final["initial"]["op"] == pytest.approx(1.0) and final["final"]["op"] < 1.0
    cut = ListSink()
    token = CallableCancelToken(lambda: len(cut.of_type("step")) >= 3)
    with pytest.raises(Cancelled):
        _run(tmp_path / "b", cut, cancel=token)
    resumed = ListSink()
    reporter_seq = ckpt.latest_reporter_seq(tmp_path / "b")
    assert reporter_seq is not None
    _run(tmp_path / "b", resumed, resume=True)
    assert resumed.of_type("finished")[0]["arch_entropy"] == final
