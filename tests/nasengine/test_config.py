"""Config dataclass -> JSON Schema, validation messages, --set parsing."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from nasengine.config import ConfigError, build_config, config_to_dict, json_schema, parse_set_options, setting


@dataclasses.dataclass
class Inner:
    """Nested settings."""

    depth: int = setting(3, "Levels", minimum=2, maximum=5)


@dataclasses.dataclass
class Cfg:
    """Example settings."""

    patch_size: tuple[int, int, int] = setting((96, 96, 96), "Patch (voxels)", minimum=8,
                                               multiple_of=8)
    lr: float = setting(0.2, "Learning rate", minimum=0.0, maximum=1.0)
    steps: int = setting(10, "Steps", minimum=1)
    optimiser: str = setting("sgd", "Optimiser", choices=("sgd", "adam"))
    amp: bool = setting(True, "Mixed precision")
    milestones: tuple[int, ...] = setting((8, 16), "Decay steps", minimum=0)
    sigma: float | None = setting(None, "Memory budget", minimum=0.0, maximum=1.0)
    inner: Inner = dataclasses.field(default_factory=Inner, metadata={"description": "Inner"})
    advanced: int = setting(1, "Hidden knob", x_advanced=True)

    def __post_init__(self):
        if self.steps < len(self.milestones):
            raise ValueError("steps: must be at least the number of milestones")


def test_schema_types_defaults_bounds_enums_arrays():
    s = json_schema(Cfg)
    assert s["type"] == "object" and s["additionalProperties"] is False
    assert s["description"] == "Example settings."
    p = s["properties"]
    assert p["patch_size"] == {"title": "Patch size", "type": "array",
                               "items": {"type": "integer", "minimum": 8, "multipleOf": 8},
                               "minItems": 3, "maxItems": 3, "description": "Patch (voxels)",
                               "default": [96, 96, 96]}
    assert p["lr"]["type"] == "number" and p["lr"]["minimum"] == 0.0 and p["lr"]["maximum"] == 1.0
    assert p["steps"]["type"] == "integer" and p["steps"]["default"] == 10
    assert p["optimiser"]["enum"] == ["sgd", "adam"] and p["optimiser"]["type"] == "string"
    assert p["amp"] == {"title": "Amp", "type": "boolean", "description": "Mixed precision",
                        "default": True}
    assert p["milestones"]["type"] == "array" and "maxItems" not in p["milestones"]
    assert p["sigma"]["anyOf"][1] == {"type": "null"} and p["sigma"]["default"] is None
    assert p["inner"]["type"] == "object"
    assert p["inner"]["properties"]["depth"]["maximum"] == 5
    assert p["inner"]["default"] == {"depth": 3}
    assert p["advanced"]["x-advanced"] is True
    assert "required" not in s


@pytest.mark.parametrize("values, message", [
    ({"patch_size": [30, 32, 32]}, "patch_size: must be 3 positive multiples of 8, got [30, 32, 32]"),
    ({"patch_size": [32, 32]}, "patch_size: must be 3 positive multiples of 8, got [32, 32]"),
    ({"patch_size": "32"}, "patch_size: must be 3 positive multiples of 8, got \"32\""),
    ({"lr": 2}, "lr: must be a number between 0.0 and 1.0, got 2"),
    ({"lr": "fast"}, "lr: must be a number between 0.0 and 1.0, got \"fast\""),
    ({"steps": 0}, "steps: must be a positive integer, got 0"),
    ({"steps": 2.5}, "steps: must be a positive integer, got 2.5"),
    ({"steps": True}, "steps: must be a positive integer, got true"),
    ({"optimiser": "rmsprop"}, 'optimiser: must be one of "sgd", "adam", got "rmsprop"'),
    ({"amp": 1}, "amp: must be true or false, got 1"),
    ({"milestones": [-1]}, "milestones: must be a list of integers >= 0, got [-1]"),
    ({"sigma": 1.5}, "sigma: must be a number between 0.0 and 1.0 or null, got 1.5"),
    ({"inner": {"depth": 9}}, "inner.depth: must be an integer between 2 and 5, got 9"),
    ({"inner": {"deep": 3}}, "inner.deep: unknown setting (did you mean 'depth'?)"),
    ({"stepz": 3}, "stepz: unknown setting (did you mean 'steps'?)"),
    ({"bogus": 3}, "bogus: unknown setting; known settings: patch_size"),
    ({"steps": 1, "milestones": [1, 2]}, "steps: must be at least the number of milestones"),
])
def test_validation_messages_name_the_field(values, message):
    with pytest.raises(ConfigError) as info:
        build_config(Cfg, values)
    assert str(info.value).startswith(message)


def test_build_config_converts_and_keeps_defaults():
    cfg = build_config(Cfg, {"patch_size": [32, 32, 16], "lr": 1, "sigma": 0.5,
                             "inner": {"depth": 4}, "steps": 4.0})
    assert cfg.patch_size == (32, 32, 16) and isinstance(cfg.lr, float)
    assert cfg.steps == 4 and isinstance(cfg.steps, int)
    assert cfg.inner == Inner(4) and cfg.optimiser == "sgd"
    assert config_to_dict(cfg)["patch_size"] == [32, 32, 16]
    assert build_config(Cfg, None) == Cfg()
    with pytest.raises(ConfigError, match="settings must be an object"):
        build_config(Cfg, [1, 2])


def test_parse_set_options():
    assert parse_set_options(["patch_size=[32,32,32]", "amp=false", "name=demo run",
                              "lr=0.1", "inner.depth=4", "sigma=null"]) == {
        "patch_size": [32, 32, 32], "amp": False, "name": "demo run", "lr": 0.1,
        "inner": {"depth": 4}, "sigma": None}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set_options(["lr"])


@dataclasses.dataclass
class Maps:
    """Name -> value settings (regulariser weights and ramps)."""

    weights: dict[str, float] = setting({}, "Weights", minimum=0.0)
    ramps: dict[str, typing.Literal["constant", "linear"]] = setting({"*": "constant"}, "Ramps")


def test_dict_settings_validate_each_value_and_render_as_objects():
    cfg = build_config(Maps, {"weights": {"memory": 2, "*": 0.5}, "ramps": {"*": "linear"}})
    assert cfg.weights == {"memory": 2.0, "*": 0.5} and isinstance(cfg.weights["memory"], float)
    assert cfg.ramps == {"*": "linear"}
    with pytest.raises(ConfigError, match=r"^weights\.memory: must be a number >= 0\.0, got -1$"):
        build_config(Maps, {"weights": {"memory": -1}})
    with pytest.raises(ConfigError, match=r"^ramps\.topology: must be one of"):
        build_config(Maps, {"ramps": {"topology": "cubic"}})
    with pytest.raises(ConfigError, match=r"^weights: must be"):
        build_config(Maps, {"weights": [1, 2]})
    schema = json_schema(Maps)["properties"]
    assert schema["weights"]["type"] == "object"
    assert schema["weights"]["additionalProperties"] == {"type": "number", "minimum": 0.0}
    assert schema["ramps"]["additionalProperties"] == {"enum": ["constant", "linear"],
                                                       "type": "string"}
    assert schema["ramps"]["default"] == {"*": "constant"}
