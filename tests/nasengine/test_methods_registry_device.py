"""Method registry and base class; device selection."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "training"))
from engine_fakes import FakeMethod  # noqa: E402

from nasengine.config import ConfigError  # noqa: E402
from nasengine.device import ENV_VAR, select_device  # noqa: E402
from nasengine.methods import (  # noqa: E402
    BUILTIN_METHODS,
    MemoryEstimate,
    SearchMethod,
    UnknownMethodError,
    get_method,
    register,
    registry,
    unregister,
)


@pytest.fixture
def fake():
    method = register(FakeMethod())
    yield method
    unregister("fake")


def test_get_method_and_unknown_method_error(fake):
    assert get_method("fake") is fake and registry["fake"] is fake
    with pytest.raises(UnknownMethodError) as info:
        get_method("nope")
    assert str(info.value).startswith("unknown search method 'nope'; known methods:")
    assert "fake" in str(info.value) and info.value.close_matches == []
    with pytest.raises(UnknownMethodError) as info:
        get_method("fakee")
    assert info.value.close_matches == ["fake"]
    assert str(info.value).endswith("(did you mean 'fake'?)")


def test_make_config_presets_overrides_and_errors(fake):
    cfg = fake.make_config("tiny", {"search_steps": 5})
    assert cfg.search_steps == 5 and cfg.patch_size == (16, 16, 16)
    assert fake.make_config().search_steps == 100  # default preset: paper
    with pytest.raises(ConfigError, match="preset: unknown preset 'x' for fake"):
        fake.make_config("x")
    with pytest.raises(ConfigError, match="^search_steps: must be an integer >= 0, got -1$"):
        fake.make_config("tiny", {"search_steps": -1})


def test_make_config_runs_the_config_validate_hook(fake):
    import dataclasses

    from nasengine.config import setting

    @dataclasses.dataclass
    class Checked:
        a: int = setting(1, "a")

        def validate(self):
            if self.a == 3:
                raise ValueError("a: three is not allowed")

    class M(FakeMethod):
        config_class = Checked
        presets = {"paper": {}, "tiny": {}}

    with pytest.raises(ConfigError, match="^a: three is not allowed$"):
        M().make_config("tiny", {"a": 3})


def test_schema_and_describe(fake):
    d = fake.describe()
    assert d["name"] == "fake" and d["presets"] == ["paper", "tiny"]
    assert d["schema"]["x-presets"]["paper"] == {"search_steps": 100}
    assert d["schema"]["properties"]["width"]["minimum"] == 1


def test_base_defaults():
    base = SearchMethod()
    with pytest.raises(NotImplementedError):
        base.estimate_memory(None, 1, 2)
    assert base.patch_divisor({"meta": {"divisor": 32}, "nodes": []}) == 32
    assert base.patch_divisor({"nodes": [{"level": 0}, {"level": 3}]}) == 8
    est = MemoryEstimate(1, 2, {"a": 1})
    assert est.to_dict() == {"search_bytes": 1, "retrain_bytes": 2, "details": {"a": 1}}


def test_every_builtin_method_is_registered():
    """No skip when a method is missing: a built-in that does not load must fail here."""
    assert "dints" in BUILTIN_METHODS
    for name, package in BUILTIN_METHODS.items():
        assert name in registry, f"built-in method {name!r} ({package}) is not registered"
        assert type(registry[name]).__module__.startswith(package)


def test_select_device(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device().type == expected
    monkeypatch.setenv(ENV_VAR, "cpu")
    assert select_device() == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv(ENV_VAR, "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device()
    monkeypatch.setenv(ENV_VAR, "gpu please")
    with pytest.raises(RuntimeError, match="not a device name"):
        select_device()
