"""The standalone from-scratch trainer: any nn.Module, stage and candidate ids on its events,
its own stage checkpoint, a completed stage that adds nothing on resume; and the measured
activation bytes of the memory-estimate contract."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, fake_val_cases  # noqa: E402

from nasengine.events import ListSink, Reporter  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training import measure_saved_bytes  # noqa: E402
from nasengine.training.retrain import RetrainConfig, train_from_scratch  # noqa: E402

CPU = torch.device("cpu")


@dataclasses.dataclass
class Data:
    train: FakeLoader
    val_cases: list
    labels: dict


def _plain_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 3, 1))


def _config(**kw) -> RetrainConfig:
    values = dict(warmup_steps=1, steps=3, lr_milestones=(2,), validate_every=2,
                  checkpoint_every=0, export=False)
    values.update(kw)
    return RetrainConfig(**values)


def test_trains_any_module_with_stage_and_candidate_on_every_event(tmp_path):
    sink = ListSink()
    data = Data(FakeLoader(seed=3), fake_val_cases(), {0: "background", 1: "organ", 2: "lesion"})
    net = _plain_net()
    before = [p.detach().clone() for p in net.parameters()]
    result = train_from_scratch(net, data, _config(), Reporter([sink]), tmp_path,
                                stage="candidate-ab12", candidate="ab12", device=CPU)
    assert all(e["stage"] == "candidate-ab12" and e["candidate"] == "ab12" for e in sink)
    assert [e["type"] for e in sink].count("finished") == 0  # the caller ends the run
    assert [v["step"] for v in sink.of_type("validation")] == [2, 4]
    assert result["step"] == 4 and set(result["dice"]) == {"organ", "lesion"}
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, net.parameters()))
    # its own stage file, not the default checkpoint.pt
    assert (tmp_path / "candidate-ab12.pt").exists() and not (tmp_path / "checkpoint.pt").exists()
    assert ckpt.load(tmp_path / "candidate-ab12.pt")["candidate"] == "ab12"
    # resumed when complete: the stored result, no event, no training
    again = ListSink()
    net2 = _plain_net()
    assert train_from_scratch(net2, Data(FakeLoader(seed=3), fake_val_cases(), data.labels),
                              _config(), Reporter([again]), tmp_path, stage="candidate-ab12",
                              candidate="ab12", device=CPU, resume=True) == result
    assert list(again) == []
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 net2.state_dict().values()))


def test_stage_names_must_be_file_names(tmp_path):
    for bad in ("../up", "a/b", ".hidden", "", "x.pt"):
        with pytest.raises(ValueError, match="stage name"):
            ckpt.stage_path(tmp_path, bad)
    assert ckpt.stage_path(tmp_path, "main").name == "checkpoint.pt"
    assert ckpt.stage_path(tmp_path, "coarse.3").name == "coarse.3.pt"


def test_checkpoint_exists_and_latest_seq_look_at_every_stage(tmp_path):
    assert not ckpt.checkpoint_exists(tmp_path / "none") and not ckpt.checkpoint_exists(tmp_path)
    assert ckpt.latest_reporter_seq(tmp_path) is None
    ckpt.save(ckpt.stage_path(tmp_path, "main"), {"reporter_seq": 7})
    ckpt.save(ckpt.stage_path(tmp_path, "fine"), {"reporter_seq": 12})
    (tmp_path / ".fine.pt.123.tmp").write_bytes(b"torn")  # a temp file is no stage
    (tmp_path / "torn.pt").write_bytes(b"not a checkpoint")  # unreadable: ignored
    assert ckpt.checkpoint_exists(tmp_path)
    assert ckpt.latest_reporter_seq(tmp_path) == 12


def test_measure_saved_bytes_counts_what_autograd_keeps():
    net = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU())
    x = torch.randn(2, 1, 8, 8, 8)
    # conv keeps its input [2,1,8,8,8]; ReLU keeps its output [2,2,8,8,8]; weights not counted
    expected = (2 * 1 * 512 + 2 * 2 * 512) * 4
    net.eval()
    assert measure_saved_bytes(net, x) == expected
    assert measure_saved_bytes(net, {"image": x, "label": None}) == expected
    assert net.training is False  # the module's mode is left as it was
