"""What the launch form renders (docs/PLUGIN-SURFACE.md, "What the launch form renders"), as
data, and a walker that lists every place where a schema steps outside it.

``frontend/static/js/runs/schema-form.js`` renders exactly these constructs; a method whose
config or retrain schema uses anything else would get a form field that silently does
nothing, so the contract suite refuses it.
"""
from __future__ import annotations

from typing import Any

#: Keys that only annotate a field (never change what is rendered as an input).
ANNOTATION_KEYS = frozenset({"title", "description", "default", "$schema"})
#: Vendor keys (``x-advanced``, ``x-presets`` ...) are allowed anywhere.
VENDOR_PREFIX = "x-"

#: Scalar types and the keys each may carry besides the annotations.
SCALAR_KEYS: dict[str, frozenset[str]] = {
    "integer": frozenset({"minimum", "maximum", "multipleOf", "enum"}),
    "number": frozenset({"minimum", "maximum", "multipleOf", "enum"}),
    "boolean": frozenset(),
    "string": frozenset({"enum"}),
}
#: Keys of ``type: array`` (a list input, checkboxes for an enum array, fixed-length arrays).
ARRAY_KEYS = frozenset({"items", "prefixItems", "minItems", "maxItems"})
#: What an array's items may be: a scalar number/string type or an enum (no nested arrays,
#: objects or booleans).
ARRAY_ITEM_TYPES = frozenset({"integer", "number", "string"})
#: Keys of ``type: object`` (a nested fieldset, recursive).
OBJECT_KEYS = frozenset({"properties", "additionalProperties", "required"})
#: ``anyOf: [X, {"type": "null"}]``: a nullable X ("automatic / none" toggle).
NULL_BRANCH = {"type": "null"}
#: Values an enum may hold.
ENUM_VALUE_TYPES = (str, int, float)


def _extra_keys(node: dict[str, Any], allowed: frozenset[str]) -> list[str]:
    return sorted(k for k in node if k not in allowed and k not in ANNOTATION_KEYS
                  and not k.startswith(VENDOR_PREFIX))


def _check_enum(node: dict[str, Any], path: str) -> list[str]:
    values = node["enum"]
    if not isinstance(values, list) or not values:
        return [f"{path}: enum must be a non-empty list"]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, ENUM_VALUE_TYPES)]
    if bad:
        return [f"{path}: enum values must be strings or numbers, got {bad!r}"]
    return []


def _check_scalar_or_enum(node: dict[str, Any], path: str, *, item: bool) -> list[str]:
    """A scalar (``type`` integer/number/boolean/string) or an enum with or without type."""
    kind = node.get("type")
    if kind is None:
        if "enum" not in node:
            return [f"{path}: neither a type nor an enum"]
        extra = _extra_keys(node, frozenset({"enum"}))
        return ([f"{path}: unsupported keys {extra}"] if extra else []) + _check_enum(node, path)
    if item and kind not in ARRAY_ITEM_TYPES:
        return [f"{path}: array items of type {kind!r} are not rendered (integer, number, "
                "string or enum only)"]
    if kind not in SCALAR_KEYS:
        return [f"{path}: type {kind!r} is not rendered"]
    problems = []
    extra = _extra_keys(node, SCALAR_KEYS[kind] | {"type"})
    if extra:
        problems.append(f"{path}: unsupported keys {extra} for type {kind!r}")
    if "enum" in node:
        problems += _check_enum(node, path)
    return problems


def _check_array(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    extra = _extra_keys(node, ARRAY_KEYS | {"type"})
    if extra:
        problems.append(f"{path}: unsupported keys {extra} for an array")
    if "items" not in node and "prefixItems" not in node:
        problems.append(f"{path}: an array needs items or prefixItems")
    if "items" in node:
        if not isinstance(node["items"], dict) or not node["items"]:
            problems.append(f"{path}.items: must be a schema of integer, number, string or enum")
        else:
            problems += _check_scalar_or_enum(node["items"], f"{path}.items", item=True)
    for i, item in enumerate(node.get("prefixItems", [])):
        if not isinstance(item, dict):
            problems.append(f"{path}.prefixItems[{i}]: not a schema")
        else:
            problems += _check_scalar_or_enum(item, f"{path}.prefixItems[{i}]", item=True)
    for key in ("minItems", "maxItems"):
        if key in node and (isinstance(node[key], bool) or not isinstance(node[key], int)):
            problems.append(f"{path}.{key}: must be an integer")
    return problems


def _check_object(node: dict[str, Any], path: str) -> list[str]:
    problems = []
    extra = _extra_keys(node, OBJECT_KEYS | {"type"})
    if extra:
        problems.append(f"{path}: unsupported keys {extra} for an object")
    properties = node.get("properties", {})
    if not isinstance(properties, dict):
        return problems + [f"{path}.properties: must be an object"]
    for name, sub in properties.items():
        problems += schema_problems(sub, f"{path}.{name}")
    additional = node.get("additionalProperties", False)
    if isinstance(additional, dict):
        problems += schema_problems(additional, f"{path}.additionalProperties")
    elif not isinstance(additional, bool):
        problems.append(f"{path}.additionalProperties: must be a boolean or a schema")
    required = node.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(properties):
        problems.append(f"{path}.required: must list names of properties")
    return problems


def schema_problems(node: Any, path: str = "schema") -> list[str]:
    """Every construct in ``node`` (a JSON Schema) that the launch form does not render, as
    ``"<path>: <problem>"`` lines; empty when the schema is renderable."""
    if not isinstance(node, dict):
        return [f"{path}: not a schema object"]
    if "anyOf" in node:
        branches = node["anyOf"]
        extra = _extra_keys(node, frozenset({"anyOf"}))
        problems = [f"{path}: unsupported keys {extra} beside anyOf"] if extra else []
        if not (isinstance(branches, list) and len(branches) == 2 and NULL_BRANCH in branches):
            return problems + [f"{path}: anyOf is rendered only as [X, {{'type': 'null'}}]"]
        other = next(b for b in branches if b != NULL_BRANCH)
        return problems + schema_problems(other, f"{path}.anyOf")
    kind = node.get("type")
    if kind == "object":
        return _check_object(node, path)
    if kind == "array":
        return _check_array(node, path)
    return _check_scalar_or_enum(node, path, item=False)
