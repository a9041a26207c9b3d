"""The UXNet plug-in: presets pin the paper, config errors name the field, the optimisers, loss
and schedule, the memory estimate against saved tensors, and a tiny search -> retrain ->
predict through ``nasengine.api`` on the demo data with the live gate series, the fallback
path reported in the genotype and an exact resume."""

import json
import random

import pytest
import torch
import torch.nn.functional as F

from nasengine import api
from nasengine.config import ConfigError
from nasengine.events import CallableCancelToken, Cancelled
from nasengine.events.sinks import read_events
from nasengine.genotype import derive_figures, validate
from nasengine.methods import get_method
from nasengine.methods.uxnet import METHOD, UXNetConfig
from nasengine.methods.uxnet.memory import full_genotype
from nasengine.methods.uxnet.method import cross_entropy
from nasengine.methods.uxnet.ops import EXPANSION_OPS, NORMAL_OPS, REDUCTION_OPS
from nasengine.methods.uxnet.supernet import HISTOGRAM_BINS, polarisation
from nasengine.ops import saved_activation_bytes
from nasengine.training import checkpoint as ckpt

#: The tiny preset with the paper's tau: four steps leave every gate near 0.5, so the
#: derivation falls back to one path (reported in the genotype).
SHORT = {"weight_only_steps": 1, "search_steps": 3, "snapshot_every": 2, "checkpoint_every": 2, "tau": 0.75}


def test_registered_and_described():
    m = get_method("uxnet")
    assert m is METHOD and m.config_class is UXNetConfig and "UXNet" in m.paper and "MICCAI 2020" in m.paper
    assert "not '3D UX-Net'" in m.description
    assert {"paper", "tiny"} <= set(m.presets)


def test_paper_preset_pins_the_paper():
    c = METHOD.make_config("paper")
    assert (c.depth, c.tau, c.loss) == (4, 0.75, "ce")
    assert (c.weight_lr, list(c.weight_betas)) == (3e-4, [0.9, 0.99])
    assert c.arch_lr == 3e-3 and c.encoder_chain_constant
    # the choices where the paper is cut off
    assert (c.arch_weight_decay, list(c.arch_betas), c.polarisation_weight, c.polarisation_ramp) == \
        (1e-3, [0.5, 0.999], 1.0, "constant")
    settings = METHOD.data_settings(c)
    assert settings.arch_split == (1.0, 1.0) and settings.divisor == 16


def test_schedule_has_no_ramp_unless_asked():
    schedule = METHOD.search_schedule(METHOD.make_config("paper"))
    assert schedule.warmup_steps == 0 and schedule.lr(0) == schedule.lr(10**6) == 3e-4
    assert schedule.regulariser_scale("polarisation", 1) == schedule.regulariser_scale("polarisation", 10**4) == 1.0
    ramped = METHOD.search_schedule(METHOD.make_config("paper", {"polarisation_ramp": "linear",
                                                                  "polarisation_weight": 10.0}))
    assert ramped.regulariser_scale("polarisation", ramped.search_steps // 2) == pytest.approx(5.0)


def test_tiny_preset_is_tiny():
    c = METHOD.make_config("tiny")
    assert list(c.patch_size) == [32, 32, 32] and c.channels <= 4 and c.batch_size <= 2
    assert c.weight_only_steps + c.search_steps <= 4


@pytest.mark.parametrize("overrides,field", [
    ({"patch_size": [34, 32, 32]}, "patch_size"),
    ({"retrain_patch_size": [32, 32]}, "retrain_patch_size"),
    ({"weight_betas": [0.9]}, "weight_betas"),
    ({"tau": 1.5}, "tau"),
    ({"loss": "focal"}, "loss"),
    ({"polarisation_ramp": "cosine"}, "polarisation_ramp"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        METHOD.make_config("tiny", overrides)


def test_optimisers_and_loss():
    c = METHOD.make_config("paper")
    net = METHOD.build_supernet(METHOD.make_config("tiny"), 1, 2)
    w_opt, a_opt = METHOD.make_optimisers(c, net.weight_parameters(), net.arch_parameters())
    assert isinstance(w_opt, torch.optim.Adam) and w_opt.defaults["betas"] == (0.9, 0.99)
    assert w_opt.defaults["lr"] == 3e-4 and w_opt.defaults["weight_decay"] == 0.0
    assert isinstance(a_opt, torch.optim.Adam) and a_opt.defaults["lr"] == 3e-3
    assert a_opt.defaults["weight_decay"] == 1e-3
    assert any(p is net.beta for p in a_opt.param_groups[0]["params"])
    assert METHOD.loss_fn(c) is cross_entropy and METHOD.loss_fn(METHOD.make_config("tiny")) is None
    logits, label = torch.randn(2, 3, 4, 4, 4), torch.randint(0, 3, (2, 1, 4, 4, 4))
    torch.testing.assert_close(cross_entropy(logits, label), F.cross_entropy(logits, label[:, 0]))


def test_the_arch_optimiser_on_J_alone_polarises_the_gates():
    beta = torch.nn.Parameter(torch.tensor([-0.05, 0.02, 0.3]))
    opt = torch.optim.Adam([beta], lr=3e-3 * 30)
    distance = []
    for _ in range(20):
        opt.zero_grad()
        polarisation(torch.sigmoid(beta)).backward()
        opt.step()
        distance.append((torch.sigmoid(beta.detach()) - 0.5).abs())
    assert all(bool((b > a).all()) for a, b in zip(distance, distance[1:]))
    assert torch.equal(torch.sign(beta.detach()), torch.tensor([-1.0, 1.0, 1.0]))


def test_search_memory_estimate_is_exact():
    c = METHOD.make_config("tiny", {"patch_size": [16, 16, 16], "retrain_patch_size": [16, 16, 16]})
    estimate = METHOD.estimate_memory(c, 1, 3)
    torch.manual_seed(0)
    net = METHOD.build_supernet(c, 1, 3)
    x = torch.randn(c.batch_size, 1, 16, 16, 16)
    assert estimate.details["search_activation_bytes"] == saved_activation_bytes(lambda: net(x), exclude=net)
    assert estimate.search_bytes > estimate.details["search_activation_bytes"] > estimate.details["retrain_activation_bytes"]


@pytest.mark.parametrize("seed", range(4))
def test_retrain_forecast_is_within_ten_percent_of_a_full_network_with_any_argmax(seed):
    """The forecast keeps every connection at the mean op; a derived network that keeps them
    all with random argmax ops saves within 10% of it."""
    c = METHOD.make_config("tiny", {"depth": 3})
    forecast = METHOD.estimate_memory(c, 1, 3).details["retrain_activation_bytes"]
    rng = random.Random(seed)
    doc = full_genotype(1, 3, c.channels, c.depth)
    for e in doc["edges"]:
        for ops in (NORMAL_OPS, REDUCTION_OPS, EXPANSION_OPS):
            if e["op"] == ops[0]:
                e["op"] = rng.choice(ops)
    per_sample = derive_figures(doc, list(c.retrain_patch_size))["memory_bytes"]
    assert forecast == pytest.approx(per_sample * c.retrain_batch_size, rel=0.10)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return api.make_demo_data(tmp_path_factory.mktemp("demo"), n_cases=5, shape=(32, 32, 32))


@pytest.fixture(scope="module")
def searched(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    genotype = api.search("uxnet", demo, out, preset="tiny", overrides=SHORT, device="cpu")
    return out, genotype


def test_search_end_to_end_yields_a_valid_costed_genotype(searched):
    out, genotype = searched
    validate(genotype)
    assert genotype["method"] == "uxnet" and genotype["kind"] == "graph" and not genotype["continuous"]
    assert genotype["gates"] == {"threshold": 0.75}
    assert genotype["derived"]["parameters"] > 0 and genotype["derived"]["patch_size"] == [32, 32, 32]
    fallback = genotype["meta"]["gate_fallback"]
    assert fallback["path"][0] == "n0_0" and fallback["path"][-1] == "n2_0" and fallback["threshold"] == 0.75
    assert all(0.45 < g < 0.55 for g in fallback["gates"] if g is not None)
    splits = json.loads((out / "splits.json").read_text())
    assert len(splits["train1"]) == len(splits["train2"]) == 2  # 4 training cases: trainA / trainB, 1:1


def test_step_events_carry_the_gate_strip_and_J(searched):
    out, _ = searched
    events = read_events(out / api.EVENTS_FILE)
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 4
    for e in steps:
        hist = [e["metrics"][f"gate_hist_{i:02d}"] for i in range(HISTOGRAM_BINS)]
        assert sum(hist) == pytest.approx(1.0)
        assert {"gate_min", "gate_median", "gate_max", "gate_polarised", "gate_kept", "polarisation_J"} <= set(e["metrics"])
    assert steps[0]["metrics"]["gate_min"] == steps[0]["metrics"]["gate_max"] == 0.5
    assert steps[-1]["metrics"]["gate_max"] > 0.5 > steps[-1]["metrics"]["gate_min"]  # the gates moved
    search_steps = [e for e in steps if e["phase"] == "search"]
    assert len(search_steps) == 3
    assert all("reg_polarisation" in e["losses"] and e["reg_scales"] == {"polarisation": 1.0} for e in search_steps)
    assert search_steps[-1]["losses"]["reg_polarisation"] < 0  # J < 0 once the gates left 0.5
    snaps = [e["genotype"] for e in events if e["type"] == "architecture"]
    assert len(snaps) >= 2
    for snap in snaps:
        validate(snap)
        assert snap["continuous"] and all("weight" in e for e in snap["edges"] if "gate" in e)


def test_beta_and_alpha_are_in_the_checkpoint(searched):
    out, _ = searched
    state = ckpt.load(out / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    assert state["network"]["beta"].shape == (9,) and state["network"]["alpha_normal"].shape == (5, 7)


def test_resumed_search_is_bitwise_identical(demo, searched, tmp_path):
    reference_out, reference = searched
    checks = [0]

    def cancel_at_step_three():
        checks[0] += 1
        return checks[0] >= 3

    with pytest.raises(Cancelled):
        api.search("uxnet", demo, tmp_path, preset="tiny", overrides=SHORT, device="cpu",
                   cancel=CallableCancelToken(cancel_at_step_three))
    resumed = api.search("uxnet", demo, tmp_path, preset="tiny", overrides=SHORT, device="cpu", resume=True)
    assert resumed == reference
    a = ckpt.load(reference_out / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    b = ckpt.load(tmp_path / api.CHECKPOINT_DIR / ckpt.CHECKPOINT_NAME)
    assert set(a["network"]) == set(b["network"])
    assert all(torch.equal(a["network"][k], b["network"][k]) for k in a["network"])

    def series(d):
        return [(e["step"], e["losses"], e["metrics"]) for e in read_events(d / api.EVENTS_FILE) if e["type"] == "step"]

    assert series(tmp_path) == series(reference_out)


def test_retrain_and_predict_end_to_end(demo, searched, tmp_path):
    _, genotype = searched
    bundle = api.retrain(genotype, demo, tmp_path / "model", preset="tiny", device="cpu")
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["method"] == "uxnet"
    assert "file" in info["exports"]["pt2"] and "file" in info["exports"]["onnx"], info["exports"]
    image = sorted((demo / "imagesTr").iterdir())[0]
    out = api.predict(bundle, image, tmp_path / "pred.nii.gz", device="cpu")
    import nibabel as nib

    assert nib.load(str(out)).shape == nib.load(str(image)).shape[:3]
