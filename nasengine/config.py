"""Typed engine configs: dataclass -> JSON Schema, validation with clear messages.

A method's config is a plain dataclass. Field metadata carries what the web form and the
validator need::

    @dataclass
    class Config:
        patch_size: tuple[int, int, int] = setting((96, 96, 96), "Patch edge lengths in voxels",
                                                   minimum=8, multiple_of=8)
        optimiser: str = setting("sgd", "Weight optimiser", choices=("sgd", "adam"))

Recognised metadata keys: ``description``, ``minimum``, ``maximum`` (for arrays they apply to
every item), ``choices`` (an enum), ``multiple_of``, ``title``, and any key starting with
``x-`` (copied into the schema verbatim, e.g. ``x-advanced``).

``json_schema(cls)`` renders the schema the web form is built from; ``build_config(cls,
values)`` validates a JSON-like dict and returns the dataclass, raising ``ConfigError`` whose
message names the field: ``"patch_size: must be 3 positive multiples of 8, got [30, 32, 32]"``.
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
import math
import operator
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

__all__ = [
    "ConfigError",
    "setting",
    "json_schema",
    "build_config",
    "config_to_dict",
    "parse_set_options",
    "merge_values",
]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A bad setting. ``str()`` is one line that names the field (``field``)."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        self.problem = message
        super().__init__(f"{field}: {message}" if field else message)


def setting(default: Any = _MISSING, description: str = "", *, minimum: float | None = None,
            maximum: float | None = None, choices: Sequence[Any] | None = None,
            multiple_of: int | None = None, title: str | None = None,
            **extra: Any) -> Any:
    """``dataclasses.field`` with schema metadata. Mutable defaults (lists, dicts) are copied."""
    meta: dict[str, Any] = {"description": description}
    for key, value in (("minimum", minimum), ("maximum", maximum), ("choices", choices),
                       ("multiple_of", multiple_of), ("title", title)):
        if value is not None:
            meta[key] = tuple(value) if key == "choices" else value
    for key, value in extra.items():
        meta[key.replace("_", "-") if key.startswith("x_") else key] = value
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ----------------------------------------------------------------------------- type helpers

def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return functools.reduce(operator.or_, args), optional  # the union without None
    return tp, False


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


# ----------------------------------------------------------------------------- JSON Schema

def _item_constraints(schema: dict, meta: Mapping[str, Any]) -> None:
    if "minimum" in meta:
        schema["minimum"] = meta["minimum"]
    if "maximum" in meta:
        schema["maximum"] = meta["maximum"]
    if "multiple_of" in meta:
        schema["multipleOf"] = meta["multiple_of"]
    if "choices" in meta:
        schema["enum"] = [_jsonable(c) for c in meta["choices"]]


def _type_schema(tp: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    tp, optional = _strip_optional(tp)
    schema = _plain_type_schema(tp, meta)
    if optional:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def _plain_type_schema(tp: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is bool:
        return {"type": "boolean"}
    if tp in (int, float, str):
        schema: dict[str, Any] = {"type": {int: "integer", float: "number", str: "string"}[tp]}
        _item_constraints(schema, meta)
        return schema
    if origin is Literal:
        values = list(args)
        kinds = {type(v) for v in values}
        schema = {"enum": values}
        if kinds == {str}:
            schema["type"] = "string"
        elif kinds == {int}:
            schema["type"] = "integer"
        return schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if dataclasses.is_dataclass(tp):
        return json_schema(tp, nested=True)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            if all(a == args[0] for a in args):
                return {"type": "array", "items": _type_schema(args[0], meta),
                        "minItems": len(args), "maxItems": len(args)}
            return {"type": "array", "prefixItems": [_type_schema(a, meta) for a in args],
                    "minItems": len(args), "maxItems": len(args)}
        item = args[0] if args else Any
        return {"type": "array", "items": _type_schema(item, meta) if item is not Any else {}}
    if origin in (dict, Mapping) or tp is dict:
        # a name -> value map; the field's bounds and choices apply to every value
        value_tp = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties":
                _type_schema(value_tp, meta) if value_tp is not Any else True}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type_schema(a, meta) for a in args]}
    if tp is Any:
        return {}
    raise TypeError(f"config type {tp!r} has no JSON Schema mapping")


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def json_schema(cls: type, *, title: str | None = None, nested: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config dataclass: types, defaults, descriptions,
    bounds, enums; tuples such as ``patch_size`` become fixed-length arrays."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        meta = dict(f.metadata)
        prop = _type_schema(hints[f.name], meta)
        prop = {"title": meta.get("title", _title(f.name)), **prop}
        if meta.get("description"):
            prop["description"] = meta["description"]
        default = _default_of(f)
        if default is _MISSING:
            required.append(f.name)
        else:
            prop["default"] = _jsonable(default)
        for key, value in meta.items():
            if key.startswith("x-"):
                prop[key] = _jsonable(value)
        properties[f.name] = prop
    schema: dict[str, Any] = {}
    if not nested:
        schema["$schema"] = _SCHEMA_DIALECT
    schema["title"] = title or cls.__name__
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith(cls.__name__ + "("):
        schema["description"] = doc.splitlines()[0]
    schema.update({"type": "object", "properties": properties, "additionalProperties": False})
    if required:
        schema["required"] = required
    return schema


# ----------------------------------------------------------------------------- validation

def _show(value: Any) -> str:
    try:
        return json.dumps(_jsonable(value))
    except (TypeError, ValueError):
        return repr(value)


def _plural(word: str, plural: bool) -> str:
    if not plural:
        return word
    return {"true or false": "booleans", "a number": "numbers", "an integer": "integers",
            "a string": "strings"}.get(word, word)


def _describe_scalar(tp: Any, meta: Mapping[str, Any], plural: bool = False) -> str:
    if "choices" in meta:
        return "one of " + ", ".join(_show(c) for c in meta["choices"])
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(_show(c) for c in typing.get_args(tp))
    if tp is bool:
        return "true or false"
    if tp is str:
        return _plural("a string", plural)
    if tp in (int, float):
        lo, hi, step = meta.get("minimum"), meta.get("maximum"), meta.get("multiple_of")
        noun = "integer" if tp is int else "number"
        if step is not None:
            noun = f"multiple{'s' if plural else ''} of {step}"
        elif plural:
            noun += "s"
        positive = lo is not None and ((tp is int and lo == 1) or (step is not None and lo > 0))
        prefix = "positive " if positive else ""
        article = "" if plural else ("an " if (prefix or noun)[0] in "aeiou" else "a ")
        text = f"{article}{prefix}{noun}"
        if lo is not None and not positive and hi is not None:
            text += f" between {lo} and {hi}"
        elif lo is not None and not positive:
            text += f" >= {lo}"
        if hi is not None and (positive or lo is None):
            text += f" <= {hi}"
        return text
    return f"a value of type {getattr(tp, '__name__', tp)}"


def _describe(tp: Any, meta: Mapping[str, Any]) -> str:
    tp, optional = _strip_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis and all(a == args[0] for a in args):
        text = f"{len(args)} {_describe_scalar(args[0], meta, plural=True)}"
    elif origin in (tuple, list) and args:
        text = f"a list of {_describe_scalar(args[0], meta, plural=True)}"
    else:
        text = _describe_scalar(tp, meta)
    return text + (" or null" if optional else "")


class _Invalid(Exception):
    pass


def _coerce_scalar(value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    if tp is Any:
        return value
    if typing.get_origin(tp) is Literal:
        if value not in typing.get_args(tp) or isinstance(value, bool) != any(
                isinstance(a, bool) for a in typing.get_args(tp) if a == value):
            raise _Invalid
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _Invalid from None
    if tp is bool:
        if not isinstance(value, bool):
            raise _Invalid
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _Invalid
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid
        value = float(value)
        if not math.isfinite(value):
            raise _Invalid
    elif tp is str:
        if not isinstance(value, str):
            raise _Invalid
    if "choices" in meta and value not in meta["choices"]:
        raise _Invalid
    if tp in (int, float):
        if "minimum" in meta and value < meta["minimum"]:
            raise _Invalid
        if "maximum" in meta and value > meta["maximum"]:
            raise _Invalid
        if "multiple_of" in meta and value % meta["multiple_of"] != 0:
            raise _Invalid
    return value


def _coerce(value: Any, tp: Any, meta: Mapping[str, Any], path: str) -> Any:
    """Validate ``value`` (JSON-like) against type ``tp``; return the typed value."""
    declared = tp
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"must be {_describe(tp, meta)}, got null", path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be an object of settings, got {_show(value)}", path)
        return _build(tp, value, prefix=path + ".")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    try:
        if origin in (tuple, list) or tp in (tuple, list):
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise _Invalid
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    raise _Invalid
                items = [_coerce_scalar(v, a, meta) for v, a in zip(value, args)]
            else:
                item_tp = args[0] if args else Any
                items = [_coerce_scalar(v, item_tp, meta) for v in value]
            return tuple(items) if (origin is tuple or tp is tuple) else list(items)
        if origin in (dict, Mapping) or tp is dict:
            if not isinstance(value, Mapping):
                raise _Invalid
            value_tp = args[1] if len(args) == 2 else Any
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _Invalid
                out[key] = _coerce(item, value_tp, meta, f"{path}.{key}")
            return out
        return _coerce_scalar(value, tp, meta)
    except _Invalid:
        raise ConfigError(f"must be {_describe(declared, meta)}, got {_show(value)}",
                          path) from None


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"settings must be an object of key/value pairs, got {_show(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown setting{hint}; known settings: {', '.join(fields)}",
                          f"{prefix}{key}")
    hints = _hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in values:
            kwargs[name] = _coerce(values[name], hints[name], f.metadata, prefix + name)
        elif _default_of(f) is _MISSING:
            raise ConfigError("is required", prefix + name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from exc


def build_config(cls: type, values: Mapping[str, Any] | None = None) -> Any:
    """Validate ``values`` against the dataclass ``cls`` and return an instance.

    Missing keys take the dataclass defaults; unknown keys, wrong types, out-of-range values and
    bad choices raise ``ConfigError`` naming the field. Lists become tuples where the field is
    a tuple. A ``__post_init__`` that raises ``ValueError`` becomes a ``ConfigError`` too.
    """
    return _build(cls, values or {})


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-able dict of a config dataclass (tuples become lists)."""
    return _jsonable(config)


def merge_values(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` updated by ``overrides``; nested dicts are merged key by key."""
    merged = dict(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_set_options(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse CLI ``--set key=value`` items; values are JSON, else plain strings.

    ``a.b=1`` sets a nested key. Example: ``["patch_size=[32,32,32]", "amp=false"]`` ->
    ``{"patch_size": [32, 32, 32], "amp": False}``.
    """
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. search_steps=10")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        target = result
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: {part} is set twice")
        target[parts[-1]] = value
    return result
