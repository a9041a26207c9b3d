"""The SCNAS plug-in: presets pin the paper, config errors name the field, the optimisers and
loss, and a tiny search -> retrain -> predict through ``nasengine.api`` on the demo data, with
the live series (temperature, sampled ops), tau in the checkpoint and an exact resume."""

import json

import nibabel as nib
import pytest
import torch

from nasengine import api
from nasengine.config import ConfigError
from nasengine.events import CallableCancelToken, Cancelled
from nasengine.events.sinks import read_events
from nasengine.genotype import validate
from nasengine.methods import get_method
from nasengine.methods.scnas import METHOD, SCNASConfig
from nasengine.methods.scnas.losses import JaccardLoss
from nasengine.training import checkpoint as ckpt

#: The tiny preset, shortened further so that the three searches below stay cheap.
SHORT = {"weight_only_steps": 1, "search_steps": 3, "snapshot_every": 2, "checkpoint_every": 2,
         "validate_every": 0}


def test_registered_and_described():
    m = get_method("scnas")
    assert m is METHOD and m.config_class is SCNASConfig and "Scalable" in m.paper
    assert {"paper", "sensible", "tiny"} <= set(m.presets)


def test_paper_preset_pins_the_paper():
    c = METHOD.make_config("paper")
    assert (c.depth, c.stem_channels, c.retrain_stem_channels) == (3, 48, 68)
    assert list(c.patch_size) == [128, 128, 128] and c.batch_size == 4 and c.retrain_batch_size == 8
    assert (c.weight_optimiser, c.weight_lr, list(c.weight_betas)) == ("adam", 0.025, [0.1, 0.001])
    assert (c.arch_lr, list(c.arch_betas)) == (0.003, [0.5, 0.999])
    assert list(c.arch_split) == [4.0, 1.0] and c.loss == "jaccard"
    assert METHOD.data_settings(c).arch_split == (4.0, 1.0) and METHOD.data_settings(c).divisor == 8
    sensible = METHOD.make_config("sensible")
    assert (sensible.weight_optimiser, sensible.weight_lr, sensible.weight_momentum) == ("sgd", 0.025, 0.9)


def test_tiny_preset_is_tiny():
    c = METHOD.make_config("tiny")
    assert list(c.patch_size) == [32, 32, 32] and c.stem_channels <= 8 and c.batch_size <= 2
    assert c.warmup_steps + c.weight_only_steps + c.search_steps <= 12


@pytest.mark.parametrize("overrides,field", [
    ({"patch_size": [34, 32, 32]}, "patch_size"),
    ({"stem_channels": 10}, "stem_channels"),
    ({"weight_betas": [0.9]}, "weight_betas"),
    ({"tau_min": 20.0, "tau_max": 10.0}, "tau_min"),
    ({"loss": "focal"}, "loss"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        METHOD.make_config("tiny", overrides)


def test_optimisers_and_loss_are_the_papers():
    c = METHOD.make_config("paper")
    net = METHOD.build_supernet(METHOD.make_config("tiny"), 1, 2)
    w_opt, a_opt = METHOD.make_optimisers(c, net.weight_parameters(), net.arch_parameters())
    assert isinstance(w_opt, torch.optim.Adam) and w_opt.defaults["betas"] == (0.1, 0.001)
    assert isinstance(a_opt, torch.optim.Adam) and a_opt.defaults["betas"] == (0.5, 0.999)
    assert a_opt.defaults["lr"] == 0.003 and a_opt.param_groups[0]["params"][0] is net.alpha
    assert isinstance(METHOD.loss_fn(c), JaccardLoss)
    sgd, _ = METHOD.make_optimisers(METHOD.make_config("sensible"), net.weight_parameters(), net.arch_parameters())
    assert isinstance(sgd, torch.optim.SGD)


def test_jaccard_loss_is_the_jaccard_distance():
    logits = torch.full((1, 2, 2, 2, 2), -20.0)
    label = torch.zeros(1, 1, 2, 2, 2, dtype=torch.long)
    label[..., 0] = 1
    logits[:, 1][label[:, 0] == 1] = 20.0  # perfect on the 4 foreground voxels
    logits[:, 0][label[:, 0] == 0] = 20.0
    assert float(JaccardLoss()(logits, label)) == pytest.approx(0.0, abs=1e-4)
    logits2 = logits.clone()
    logits2[0, :, 0, 0, 1] = torch.tensor([-20.0, 20.0])  # one false positive: J = 4/5
    assert float(JaccardLoss()(logits2, label)) == pytest.approx(1 - 4 / 5, abs=1e-3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return api.make_demo_data(tmp_path_factory.mktemp("demo"), n_cases=5, shape=(32, 32, 32))


@pytest.fixture(scope="module")
def searched(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    genotype = api.search("scnas", demo, out, preset="tiny", overrides=SHORT, device="cpu")
    return out, genotype


def test_search_end_to_end_yields_a_valid_costed_genotype(searched):
    out, genotype = searched
    validate(genotype)
    assert genotype["method"] == "scnas" and genotype["kind"] == "cells" and not genotype["continuous"]
    assert genotype["derived"]["parameters"] > 0 and genotype["derived"]["patch_size"] == [32, 32, 32]
    assert genotype["meta"]["temperature"] == pytest.approx(0.5)  # tau_min of tiny at the last step
    s = json.loads((out / "splits.json").read_text())
    assert len(s["train1"]) == 3 and len(s["train2"]) == 1  # 4 training cases split 4:1 (3:1 rounded)


def test_step_events_carry_temperature_and_sampled_ops(searched):
    out, _ = searched
    steps = [e for e in read_events(out / api.EVENTS_FILE) if e["type"] == "step"]
    assert len(steps) == 4
    temps = [e["metrics"]["temperature"] for e in steps]
    assert temps[0] == 5.0 and temps[1] == 5.0 and temps[-1] == pytest.approx(0.5) and temps[2] < 5.0
    counts = steps[-1]["metrics"]["sampled_ops"]
    assert set(counts) == {"encoder_normal", "reduction", "decoder_normal", "expansion"}
    # the previous step was a search step: 2 forwards x 14 edges x 2 ops per cell type
    assert all(sum(c.values()) == 56 for c in counts.values())
    assert sum(steps[1]["metrics"]["sampled_ops"]["reduction"].values()) == 28  # a weights-only step
    snaps = [e for e in read_events(out / api.EVENTS_FILE) if e["type"] == "architecture"]
    assert len(snaps) >= 2
    validate(snaps[-1]["genotype"])
    assert snaps[-1]["genotype"]["continuous"] and len(snaps[-1]["genotype"]["cells"]) == 4


def test_tau_is_in_the_checkpoint(searched):
    out, _ = searched
    state = ckpt.load(out / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    assert float(state["network"]["tau"]) == pytest.approx(0.5)
    assert state["network"]["alpha"].shape == (4, 14, 8)


def test_resumed_search_is_bitwise_identical(demo, searched, tmp_path):
    reference_out, reference = searched
    checks = [0]

    def cancel_at_step_two():
        checks[0] += 1
        return checks[0] >= 3

    with pytest.raises(Cancelled):
        api.search("scnas", demo, tmp_path, preset="tiny", overrides=SHORT, device="cpu",
                   cancel=CallableCancelToken(cancel_at_step_two))
    resumed = api.search("scnas", demo, tmp_path, preset="tiny", overrides=SHORT, device="cpu", resume=True)
    assert resumed == reference
    a = ckpt.load(reference_out / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    b = ckpt.load(tmp_path / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    for key in ("alpha", "tau", "sample_counts"):
        assert torch.equal(a["network"][key], b["network"][key])
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])
    def series(d):
        return [(e["step"], e["losses"], e["metrics"]) for e in read_events(d / api.EVENTS_FILE) if e["type"] == "step"]

    assert series(tmp_path) == series(reference_out)


def test_retrain_and_predict_end_to_end(demo, searched, tmp_path):
    _, genotype = searched
    bundle = api.retrain(genotype, demo, tmp_path / "model", preset="tiny", device="cpu")
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["method"] == "scnas"
    exports = info["exports"]
    assert "file" in exports["pt2"] and "file" in exports["onnx"], exports
    image = sorted((demo / "imagesTr").iterdir())[0]
    out = api.predict(bundle, image, tmp_path / "pred.nii.gz", device="cpu")
    pred, src = nib.load(str(out)), nib.load(str(image))
    assert pred.shape == src.shape[:3]
