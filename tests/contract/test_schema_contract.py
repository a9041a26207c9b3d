"""Every method's config schema and retrain schema use only what the launch form renders."""
from __future__ import annotations

import pytest
from schema_constructs import schema_problems

from nasengine import api
from nasengine.methods import get_method


def test_config_schema_uses_only_rendered_constructs(method_name):
    schema = get_method(method_name).schema()
    assert schema.get("type") == "object" and schema.get("properties"), "not an object schema"
    assert schema_problems(schema) == []


def test_config_schema_carries_the_presets(method_name):
    method = get_method(method_name)
    assert set(method.schema()["x-presets"]) == set(method.presets)


def test_retrain_schema_uses_only_rendered_constructs(method_name):
    schema = api.retrain_schema(method_name)
    assert schema.get("type") == "object" and schema.get("properties"), "not an object schema"
    assert "tiny" in schema.get("x-presets", {}), "the retrain presets need a tiny one"
    assert schema_problems(schema) == []


# ---- the walker itself: it must accept each listed construct and refuse anything else ------

RENDERED = {
    "integer with bounds": {"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 1},
    "number": {"type": "number", "minimum": 0.0, "title": "T", "description": "help"},
    "boolean": {"type": "boolean", "default": True},
    "string": {"type": "string"},
    "string enum": {"type": "string", "enum": ["a", "b"]},
    "untyped enum": {"enum": [1, 2.5, "x"]},
    "integer list": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "string list": {"type": "array", "items": {"type": "string"}},
    "enum array": {"type": "array", "items": {"enum": ["x", "y"]}},
    "fixed length": {"type": "array", "items": {"type": "integer"}, "minItems": 3,
                     "maxItems": 3},
    "prefix items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}],
                     "minItems": 2, "maxItems": 2},
    "nested object": {"type": "object", "properties": {"inner": {
        "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        "additionalProperties": False},
    "map of numbers": {"type": "object", "additionalProperties": {"type": "number"}},
    "nullable": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
    "vendor keys": {"type": "integer", "x-advanced": True, "x-anything": [1]},
}

NOT_RENDERED = {
    "unknown type": {"type": "date"},
    "null alone": {"type": "null"},
    "no type, no enum": {"title": "what"},
    "array of objects": {"type": "array", "items": {"type": "object", "properties": {}}},
    "array of arrays": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
    "array of booleans": {"type": "array", "items": {"type": "boolean"}},
    "array without items": {"type": "array"},
    "array of anything": {"type": "array", "items": {}},
    "pattern": {"type": "string", "pattern": "^a"},
    "oneOf": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    "anyOf of two types": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "enum of objects": {"enum": [{"a": 1}]},
    "enum of booleans": {"enum": [True, False]},
    "bad nested property": {"type": "object", "properties": {"x": {"type": "date"}}},
    "required not a property": {"type": "object", "properties": {}, "required": ["x"]},
    "exclusiveMinimum": {"type": "number", "exclusiveMinimum": 0},
    "$ref": {"$ref": "#/defs/x"},
}


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_walker_accepts_rendered_construct(name):
    assert schema_problems({"type": "object", "properties": {"field": RENDERED[name]}}) == []


@pytest.mark.parametrize("name", sorted(NOT_RENDERED))
def test_walker_refuses_construct_the_form_does_not_render(name):
    problems = schema_problems({"type": "object", "properties": {"field": NOT_RENDERED[name]}})
    assert problems and all(p.startswith("schema.field") for p in problems), problems
