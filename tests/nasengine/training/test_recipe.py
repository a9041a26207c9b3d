"""The nnU-Net training recipe (issue 12 item 1): fields, poly schedule, optimiser, loss,
MONAI augmentation in the loop (resumable bit for bit), and which preset uses which recipe."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine_fakes import FakeLoader, fake_val_cases, tiny_genotype  # noqa: E402

from nasengine import api  # noqa: E402
from nasengine.data.augment import AugmentedBatches  # noqa: E402
from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter  # noqa: E402
from nasengine.methods import registry  # noqa: E402
from nasengine.training import checkpoint as ckpt  # noqa: E402
from nasengine.training.retrain import (  # noqa: E402
    RETRAIN_PRESET_DESCRIPTIONS,
    RetrainConfig,
    RetrainData,
    RetrainState,
    default_loss,
    default_optimiser,
    retrain,
)
from nasengine.training.schedule import poly_lr  # noqa: E402

CPU = torch.device("cpu")


def test_default_recipe_is_nnunets():
    config = RetrainConfig()
    assert config.recipe == "nnunet"
    assert (config.nnunet_lr, config.nnunet_momentum, config.nnunet_weight_decay,
            config.poly_exponent) == (0.01, 0.99, 3e-5, 0.9)
    opt = default_optimiser(config)([torch.nn.Parameter(torch.zeros(2))])
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert group["nesterov"] is True and group["momentum"] == 0.99
    assert group["weight_decay"] == 3e-5
    # nnU-Net's soft Dice (not squared) + CE; the paper recipe keeps DiNTS's squared Dice
    assert default_loss(config).loss.dice.squared_pred is False
    assert default_loss(RetrainConfig(recipe="paper")).loss.dice.squared_pred is True


def test_poly_schedule_values():
    config = RetrainConfig(warmup_steps=0, steps=100)
    assert config.lr(0) == pytest.approx(0.01)
    assert config.lr(50) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert config.lr(99) == pytest.approx(0.01 * 0.01 ** 0.9)
    rates = [config.lr(s) for s in range(100)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # strictly decreasing, never < 0
    assert poly_lr(120, total_steps=100, lr_initial=0.01) == 0.0
    # warm-up steps are ordinary steps of the poly decay under the nnunet recipe
    assert RetrainConfig(warmup_steps=10, steps=90).lr(50) == pytest.approx(config.lr(50))
    paper = RetrainConfig(recipe="paper", warmup_steps=2, steps=4, lr_milestones=(2, 3))
    assert [paper.lr(s) for s in range(6)] == pytest.approx([0.025, 0.1125, 0.2, 0.2, 0.1,
                                                             0.05])


def test_presets_default_nnunet_paper_keeps_the_papers_recipe():
    assert api.make_retrain_config().recipe == "nnunet"
    assert api.make_retrain_config("paper").recipe == "paper"
    for name, method in registry.items():
        assert method.make_retrain_config().recipe == "nnunet", name
        assert method.make_retrain_config("paper").recipe == "paper", name
        assert method.make_retrain_config("cpu").recipe == "nnunet", name
        schema = method.retrain_schema()
        assert schema["x-default-preset"] == "default"
        assert "DEMO" in schema["x-preset-descriptions"]["small"]
    assert "TESTS" in RETRAIN_PRESET_DESCRIPTIONS["tiny"]
    assert api.retrain_schema()["properties"]["recipe"]["enum"] == ["nnunet", "paper"]


def test_the_nnunet_recipe_augments_the_training_batches():
    config = RetrainConfig(warmup_steps=0, steps=2)
    state = RetrainState(torch.nn.Conv3d(1, 3, 1), FakeLoader(seed=1), config,
                         make_optimiser=None, loss_fn=None,
                         reporter=Reporter([]), checkpoint_dir="/nonexistent", device=CPU,
                         amp=False)
    assert isinstance(state.train, AugmentedBatches)
    paper = RetrainState(torch.nn.Conv3d(1, 3, 1), FakeLoader(seed=1),
                         RetrainConfig(recipe="paper"), make_optimiser=None, loss_fn=None,
                         reporter=Reporter([]), checkpoint_dir="/nonexistent", device=CPU,
                         amp=False)
    assert isinstance(paper.train, FakeLoader)


@dataclasses.dataclass
class _Plan:
    patch_size: tuple = (16, 16, 16)

    def to_dict(self):
        return {"patch_size": list(self.patch_size), "label_ids": [0, 1, 2]}


def _data():
    return RetrainData(plan=_Plan(), train=FakeLoader(seed=5), val_cases=fake_val_cases(),
                       in_channels=1, out_channels=3,
                       labels={0: "background", 1: "organ", 2: "lesion"},
                       channel_names=["MR"], source={})


def test_nnunet_recipe_resume_is_bitwise_identical(tmp_path):
    config = RetrainConfig(warmup_steps=0, steps=6, validate_every=0, checkpoint_every=2,
                           export=False)
    retrain(tiny_genotype(), _data(), config, None, tmp_path / "a", device=CPU)
    sink = ListSink()
    token = CallableCancelToken(lambda: len(sink.of_type("step")) >= 3)
    with pytest.raises(Cancelled):
        retrain(tiny_genotype(), _data(), config, Reporter([sink]), tmp_path / "b", token,
                device=CPU)
    resumed = Reporter([sink])
    resumed.rewind(ckpt.latest_reporter_seq(tmp_path / "b" / "checkpoints"))
    torch.manual_seed(1234)
    retrain(tiny_genotype(), _data(), config, resumed, tmp_path / "b", resume=True,
            device=CPU)
    a = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_search_presets_say_what_they_are_for():
    for name, method in registry.items():
        described = method.schema()["x-preset-descriptions"]
        assert described["tiny"].startswith("TESTS ONLY"), name
        assert "paper" in described, name
    assert "2 CPU cores" in registry["dints"].schema()["x-preset-descriptions"]["cpu"]
