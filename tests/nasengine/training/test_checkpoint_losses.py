"""Checkpoints (weights_only, atomic, RNG states), loss, learning-rate schedule."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nasengine.training import checkpoint as ckpt
from nasengine.training.losses import DiceCELoss
from nasengine.training.schedule import lr_at


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = torch.nn.Conv3d(1, 2, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 1, 5, 5, 5)).sum().backward()
    opt.step()
    adam = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=0.01)
    adam.param_groups[0]["params"][0].grad = torch.ones(3)
    adam.step()
    rng = np.random.default_rng(3)
    state = {"network": model.state_dict(), "opt": opt.state_dict(), "adam": adam.state_dict(),
             "rng": ckpt.capture_rng(), "loader": {"bit_generator": rng.bit_generator.state},
             "step": 5, "reporter_seq": 17, "validation": {"dice": {"a": 0.5}, "mean": None}}
    path = ckpt.save(tmp_path / "c" / "checkpoint.pt", state)
    # what the engine does, and what anybody else can do: weights_only=True
    loaded = torch.load(path, weights_only=True)
    assert ckpt.load(path)["step"] == 5
    assert loaded["reporter_seq"] == 17 and loaded["validation"]["dice"] == {"a": 0.5}
    for k, v in state["network"].items():
        assert torch.equal(loaded["network"][k], v)
    assert torch.equal(loaded["opt"]["state"][0]["momentum_buffer"],
                       state["opt"]["state"][0]["momentum_buffer"])
    assert loaded["loader"]["bit_generator"] == rng.bit_generator.state
    opt2 = torch.optim.SGD(torch.nn.Conv3d(1, 2, 3).parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(loaded["opt"])
    assert [p.name for p in tmp_path.joinpath("c").iterdir()] == ["checkpoint.pt"]


def test_rng_states_are_restored(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.normal()  # leaves a cached gaussian in numpy's legacy state
    ckpt.save(tmp_path / "c.pt", {"rng": ckpt.capture_rng()})
    expected = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    ckpt.restore_rng(ckpt.load(tmp_path / "c.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), np.random.normal(), random.random())
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    assert got[3] == expected[3]


def test_save_is_atomic_old_checkpoint_survives_a_failed_write(tmp_path):
    path = tmp_path / "checkpoint.pt"
    ckpt.save(path, {"step": 1})
    with pytest.raises(Exception):
        ckpt.save(path, {"step": 2, "bad": lambda: None})  # not serialisable
    assert ckpt.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert ckpt.peek_reporter_seq(path) is None
    ckpt.save(path, {"step": 3, "reporter_seq": 9})
    assert ckpt.peek_reporter_seq(path) == 9
    assert ckpt.peek_reporter_seq(tmp_path / "missing.pt") is None


def test_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": random.Random(0)}, path)  # arbitrary object
    with pytest.raises(Exception):
        ckpt.load(path)


def test_dice_ce_loss_is_even_sum_of_dice_and_ce():
    from monai.losses import DiceLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, 4)
    target = torch.randint(0, 3, (2, 1, 4, 4, 4))
    loss = DiceCELoss()(logits, target)
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0])
    dice = DiceLoss(include_background=False, to_onehot_y=True, softmax=True,
                    squared_pred=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)(logits, target)
    assert loss.item() == pytest.approx((ce + dice).item(), rel=1e-5)
    # perfect logits give a loss near zero; target without channel dim is accepted
    perfect = torch.nn.functional.one_hot(target[:, 0], 3).permute(0, 4, 1, 2, 3).float() * 50
    assert DiceCELoss()(perfect, target[:, 0]).item() < 1e-3


def test_lr_schedule_shape():
    kw = dict(warmup_steps=4, lr_start=0.025, lr_peak=0.2, milestones=[2, 4], gamma=0.5)
    lrs = [lr_at(s, **kw) for s in range(10)]
    assert lrs[0] == 0.025 and lrs[1] == pytest.approx(0.025 + 0.175 / 4)
    assert lrs[4:6] == [0.2, 0.2] and lrs[6:8] == [0.1, 0.1] and lrs[8:] == [0.05, 0.05]
    assert lr_at(0, warmup_steps=0, lr_start=0.1, lr_peak=0.3, milestones=[], gamma=0.5) == 0.3
