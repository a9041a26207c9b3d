"""The DiNTS plug-in: registry, presets, config errors, schedule, a tiny search end to end."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dints_testing import synthetic_search_data

from nasengine.config import ConfigError
from nasengine.events import ListSink, Reporter
from nasengine.genotype import validate
from nasengine.methods import get_method
from nasengine.methods.dints import METHOD, DiNTSConfig


def test_registered():
    m = get_method("dints")
    assert m is METHOD and m.config_class is DiNTSConfig
    assert "DiNTS" in m.paper


def test_paper_preset_pins_the_paper():
    c = METHOD.make_config("paper")
    assert (c.num_layers, c.num_depths, c.stem_filters) == (12, 4, 16)
    assert (c.sigma, c.topology_weight) == (0.8, 0.001)
    assert (c.momentum, c.weight_decay) == (0.9, 4e-5)
    assert (c.lr_start, c.lr_peak, c.warmup_steps) == (0.025, 0.2, 1000)
    assert (c.weight_only_steps, c.search_steps) == (10000, 10000)
    assert list(c.lr_milestones) == [8000, 16000] and c.lr_gamma == 0.5
    assert (c.arch_lr, c.arch_weight_decay) == (0.008, 0.0)
    assert (c.alpha_init_mean, c.alpha_init_std, c.edge_init_mean, c.edge_init_std) == (1.0, 0.01, 0.0, 0.01)
    assert list(c.patch_size) == [96, 96, 96] and c.batch_size == 8
    assert c.retrain_channel_multiplier == 2.0 and c.retrain_batch_size == 16


def test_tiny_preset_is_tiny():
    c = METHOD.make_config("tiny")
    assert c.num_layers <= 4 and c.num_depths == 3 and c.stem_filters <= 8
    assert list(c.patch_size) == [32, 32, 32] and c.batch_size == 2
    assert c.warmup_steps + c.weight_only_steps + c.search_steps < 100


@pytest.mark.parametrize("overrides,field", [
    ({"sigma": 1.5}, "sigma"),
    ({"num_depths": 9}, "num_depths"),
    ({"patch_size": [36, 32, 32]}, "patch_size"),
    ({"lr_milestones": [20, 10]}, "lr_milestones"),
])
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        METHOD.make_config("tiny", overrides)


def test_schema_carries_field_metadata():
    schema = METHOD.schema()
    props = schema["properties"]
    assert props["sigma"]["minimum"] == 0.0 and props["sigma"]["maximum"] == 1.0
    assert "budget" in props["sigma"]["description"].lower()
    assert set(schema["x-presets"]) >= {"paper", "tiny"}


def test_data_settings_and_schedule():
    c = METHOD.make_config("tiny")
    assert METHOD.data_settings(c).divisor == 8
    sched = METHOD.search_schedule(c)
    assert sched.search_steps == c.search_steps and sched.arch_lr == c.arch_lr
    assert tuple(sched.lr_milestones) == tuple(c.lr_milestones)


def test_schedule_ramps_every_regulariser_linearly():
    """Eq. 11: L = L_seg + t/t_all (entropies + lambda topology + memory); the shared loop's
    default is a constant weight, so DiNTS asks for the linear ramp on every term."""
    sched = METHOD.search_schedule(METHOD.make_config("tiny"))
    assert sched.regulariser_ramps == {"*": "linear"}
    assert not sched.regulariser_weights  # lambda is inside the topology term already


def test_retrain_presets_are_the_papers():
    from nasengine.training.retrain import RETRAIN_PRESETS

    assert METHOD.retrain_presets is RETRAIN_PRESETS
    # the paper's recipe (sec. 4.1) with RetrainConfig's defaults otherwise
    assert RETRAIN_PRESETS["paper"] == {"recipe": "paper"}


def test_a_broken_method_module_fails_loudly():
    """No swallowed ImportError: if the plug-in cannot be imported, importing DiNTS raises."""
    code = ("import sys; sys.modules['nasengine.methods.dints.method'] = None\n"
            "try:\n    import nasengine.methods.dints\nexcept ImportError as exc:\n    print('raised', exc)\n"
            "else:\n    print('imported', nasengine.methods.dints.METHOD)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[4], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("raised"), out.stdout


def test_tiny_search_end_to_end(tmp_path):
    c = METHOD.make_config("tiny", {"num_layers": 2, "num_depths": 2, "stem_filters": 2, "patch_size": [16, 16, 16],
                                    "warmup_steps": 1, "weight_only_steps": 1, "search_steps": 3,
                                    "lr_milestones": [], "validate_every": 0, "checkpoint_every": 0,
                                    "snapshot_every": 2})
    data = synthetic_search_data()
    sink = ListSink()
    genotype = METHOD.search(data, c, Reporter([sink]), tmp_path / "ckpt")
    validate(genotype)
    assert genotype["method"] == "dints" and genotype["continuous"] is False
    assert genotype["meta"]["search_stem_filters"] == 2 and genotype["meta"]["stem_filters"] == 4
    assert genotype["derived"]["patch_size"] == [16, 16, 16] and genotype["derived"]["parameters"] > 0
    types = [e["type"] for e in sink]
    assert "architecture" in types and types[-1] == "finished"
    snaps = sink.of_type("architecture")
    validate(snaps[-1]["genotype"])
    net = METHOD.build_network(genotype)
    assert net(torch.randn(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)
