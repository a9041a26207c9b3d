"""Every method's presets build valid configs, and bad values raise ``ConfigError`` naming
the field."""
from __future__ import annotations

import pytest

from nasengine.config import ConfigError
from nasengine.methods import get_method


def bounded_scalar_fields(schema: dict) -> list[tuple[str, dict]]:
    """Top-level integer/number settings with a minimum or maximum (and no enum)."""
    return [(name, prop) for name, prop in schema["properties"].items()
            if prop.get("type") in ("integer", "number") and "enum" not in prop
            and ("minimum" in prop or "maximum" in prop)]


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_preset_builds_a_valid_config(method_name, preset):
    method = get_method(method_name)
    config = method.make_config(preset)
    assert isinstance(config, method.config_class)
    settings = method.data_settings(config)
    assert settings.batch_size >= 1
    assert settings.patch_size is not None and len(settings.patch_size) == 3


def test_out_of_range_values_name_the_field(method_name):
    method = get_method(method_name)
    fields = bounded_scalar_fields(method.schema())
    assert fields, "a method config with no bounded numeric setting cannot be checked"
    for name, prop in fields:
        step = 1 if prop["type"] == "integer" else 0.5
        bad = []
        if "minimum" in prop:
            bad.append(prop["minimum"] - step)
        if "maximum" in prop:
            bad.append(prop["maximum"] + step)
        for value in bad:
            with pytest.raises(ConfigError) as info:
                method.make_config("tiny", {name: value})
            assert info.value.field == name, f"{name}={value}: {info.value}"
            assert str(info.value).startswith(f"{name}: ")


def test_wrong_type_names_the_field(method_name):
    method = get_method(method_name)
    name, _ = bounded_scalar_fields(method.schema())[0]
    with pytest.raises(ConfigError) as info:
        method.make_config("tiny", {name: "not a number"})
    assert info.value.field == name


def test_unknown_setting_names_it(method_name):
    with pytest.raises(ConfigError, match="no_such_setting"):
        get_method(method_name).make_config("tiny", {"no_such_setting": 1})


def test_unknown_preset_names_the_known_ones(method_name):
    method = get_method(method_name)
    with pytest.raises(ConfigError) as info:
        method.make_config("no-such-preset")
    assert info.value.field == "preset" and "tiny" in str(info.value)
