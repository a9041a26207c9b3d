"""The web app's view of the engine: methods, configs, defaults and memory estimates.

Every engine error a user can cause (bad setting, bad architecture file) becomes a Django
``ValidationError`` keyed by the field, so the API answers 400 with field errors.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from django.core.exceptions import ValidationError

GB = 1_000_000_000


def format_gb(n: int | float | None) -> str:
    """Bytes for people: "7.9 GB", or "36 MB" below 1 GB (where "0.0 GB" would say nothing)."""
    if n is None:
        return "—"
    if n >= 0.95 * GB:
        return f"{n / GB:.1f} GB"
    return f"{max(n / 1e6, 0.01):.3g} MB"


@functools.lru_cache(maxsize=1)
def _methods() -> list[dict[str, Any]]:
    from nasengine.api import list_methods

    return list_methods()


@functools.cache
def _retrain_schema(method: str | None) -> dict[str, Any]:
    from nasengine.api import retrain_schema

    return retrain_schema(method)


def catalogue(retrain_method: str | None = None) -> dict[str, Any]:
    """What the launch form renders: every method as the engine describes it (name, paper,
    presets, its whole config JSON Schema and its retraining schema), and under ``retrain`` the
    retraining schema of ``retrain_method`` (the shared one when None or not registered)."""
    method = retrain_method if retrain_method in method_names() else None
    return {"methods": _methods(), "retrain": _retrain_schema(method), "retrain_method": method}


def forget_methods() -> None:
    """Read the engine's registry afresh next time (it is read once per process; a test that
    registers a method calls this)."""
    _methods.cache_clear()
    _retrain_schema.cache_clear()


def method_names() -> list[str]:
    return [m["name"] for m in _methods()]


def retrain_method(genotype: dict | None) -> str | None:
    """The registered method whose retraining settings apply to ``genotype`` (its ``method``
    field), or None for the shared settings (no genotype, or a method not installed here)."""
    name = (genotype or {}).get("method") if isinstance(genotype, dict) else None
    return name if name in method_names() else None


def retrain_presets(method: str | None) -> list[str]:
    """Names of the retraining presets of ``method`` (None: the shared ones)."""
    return list(catalogue(method)["retrain"].get("x-presets") or {})


def default_retrain_preset(method: str | None) -> str:
    """The engine's recommended retraining (``default``: the nnU-Net recipe, issue 12), else the
    paper's, else the method's first preset."""
    presets = retrain_presets(method)
    for name in ("default", "paper"):
        if name in presets:
            return name
    return presets[0] if presets else "default"


def all_retrain_presets() -> list[str]:
    """Every retraining preset name of any method (an uploaded genotype names its method only
    once it is read), in a stable order."""
    names = retrain_presets(None)
    for method in method_names():
        names += [p for p in retrain_presets(method) if p not in names]
    return names


def _config_error(exc) -> ValidationError:
    field = getattr(exc, "field", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if field and field != "preset":
        return ValidationError({"config": [f"{field}: {problem}"], f"config.{field}": [problem]})
    if field == "preset":
        return ValidationError({"preset": [problem]})
    return ValidationError({"config": [problem]})


def _as_overrides(config) -> dict:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValidationError({"config": ["The settings must be a JSON object."]})
    return dict(config)


def search_config(method: str, preset: str, config: dict | None, seed: int | None = None):
    """(engine config object, resolved dict) for a search; ValidationError on bad values."""
    from nasengine.config import ConfigError, config_to_dict
    from nasengine.methods import get_method

    if method not in method_names():
        raise ValidationError({"method": [f"Unknown method {method!r}; known: {', '.join(method_names())}."]})
    overrides = _as_overrides(config)
    if seed is not None:
        overrides["seed"] = seed
    m = get_method(method)
    try:
        cfg = m.make_config(preset or m.default_preset, overrides)
    except ConfigError as exc:
        raise _config_error(exc)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"config": [str(exc)]})
    return cfg, config_to_dict(cfg)


def retrain_config(preset: str, config: dict | None, seed: int | None = None, *, method: str | None = None):
    """(engine config object, resolved dict) for retraining with ``method``'s settings and
    presets (None: the shared ones); ValidationError on bad values."""
    from nasengine.api import make_retrain_config
    from nasengine.config import ConfigError, config_to_dict

    overrides = _as_overrides(config)
    if seed is not None:
        overrides["seed"] = seed
    try:
        cfg = make_retrain_config(preset or default_retrain_preset(method), overrides, method=method)
    except ConfigError as exc:
        raise _config_error(exc)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"config": [str(exc)]})
    return cfg, config_to_dict(cfg)


def validate_genotype(doc) -> dict:
    """A genotype document checked by the engine (never evaluated); ValidationError with the bad field."""
    from nasengine.genotype import GenotypeError, validate

    if not isinstance(doc, dict):
        raise ValidationError({"genotype": ["The architecture must be a JSON object (a VoxelSearch genotype document)."]})
    if doc.get("continuous"):
        raise ValidationError({"genotype": ["This is a snapshot taken during a search (continuous); retrain the final architecture."]})
    try:
        return validate(doc)
    except GenotypeError as exc:
        raise ValidationError({"genotype": [f"Not a valid architecture: {exc}"]})
    except (TypeError, ValueError, KeyError) as exc:
        raise ValidationError({"genotype": [f"Not a valid architecture: {exc}"]})


def _plan(dataset, divisor: int, max_patch=None, patch_size=None):
    from nasengine.data.plan import make_plan

    if not dataset.fingerprint:
        return None
    try:
        return make_plan(dataset.fingerprint, divisor=divisor, max_patch=max_patch, patch_size=patch_size)
    except (ValueError, KeyError, TypeError):
        return None


def search_defaults(dataset, method: str, preset: str) -> dict:
    """The preset's values, with the patch size from the dataset's plan (fits the images and the
    preset's patch, a multiple of the network's divisor)."""
    from nasengine.methods import get_method

    cfg, values = search_config(method, preset, {})
    settings = get_method(method).data_settings(cfg)
    if "patch_size" in values and values["patch_size"]:
        plan = _plan(dataset, settings.divisor, max_patch=tuple(values["patch_size"]))
        if plan is not None:
            values["patch_size"] = [int(s) for s in plan.patch_size]
    return values


def retrain_defaults(dataset, preset: str, genotype: dict | None) -> dict:
    """The retraining preset's values (of the genotype's method), with the patch size planned
    from the dataset when the preset leaves it open."""
    _, values = retrain_config(preset, {}, method=retrain_method(genotype))
    if genotype and not values.get("patch_size"):
        plan = _plan(dataset, genotype_divisor(genotype), max_patch=values.get("max_patch"))
        if plan is not None:
            values["patch_size"] = [int(s) for s in plan.patch_size]
    return values


def genotype_divisor(genotype: dict) -> int:
    from nasengine.methods import registry

    method = registry.get(genotype.get("method", ""))
    if method is not None:
        return int(method.patch_divisor(genotype))
    levels = [int(n.get("level") or 0) for n in genotype.get("nodes", [])]
    return 2 ** max(levels, default=0)


def _channels(dataset) -> tuple[int, int]:
    return max(1, len(dataset.channel_names or [])), max(2, len(dataset.labels or {}))


def estimate_search(dataset, method: str, cfg) -> dict:
    from nasengine.methods import get_method

    in_ch, out_ch = _channels(dataset)
    est = get_method(method).estimate_memory(cfg, in_ch, out_ch)
    return {"search_bytes": int(est.search_bytes), "retrain_bytes": int(est.retrain_bytes),
            "needed_bytes": int(est.search_bytes), "what": "search", "details": _small(est.details)}


def retrain_patch(dataset, genotype: dict, values: dict) -> list[int] | None:
    if values.get("patch_size"):
        return [int(s) for s in values["patch_size"]]
    plan = _plan(dataset, genotype_divisor(genotype), max_patch=values.get("max_patch"))
    return [int(s) for s in plan.patch_size] if plan is not None else None


def estimate_retrain(dataset, genotype: dict, values: dict) -> dict:
    """Activations of the network at the training patch for one batch, plus weights, gradients
    and SGD momentum (4 copies of the parameters, float32)."""
    from nasengine.genotype import GenotypeError, derive_figures

    patch = retrain_patch(dataset, genotype, values)
    if patch is None:
        raise ValidationError({"config": ["The dataset has no fingerprint to plan a patch size; set patch_size."]})
    try:
        figures = derive_figures(genotype, patch)
    except GenotypeError as exc:
        raise ValidationError({"config": [str(exc)]})
    batch = int(values.get("batch_size") or 1)
    needed = int(figures["memory_bytes"]) * batch + 16 * int(figures.get("parameters") or 0)
    return {"search_bytes": None, "retrain_bytes": needed, "needed_bytes": needed, "what": "retrain",
            "details": {"patch_size": patch, "batch_size": batch, **_small(figures)}}


#: Largest JSON of one estimate detail kept (the estimate goes into the run row and the page).
MAX_DETAIL_CHARS = 2000


def _small(details: dict) -> dict:
    """The estimate's details that are JSON (numbers, strings, lists, nested objects such as a
    per-part breakdown) and small; anything else (tensors, big tables) is left out."""
    kept = {}
    for key, value in (details or {}).items():
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        if len(text) <= MAX_DETAIL_CHARS:
            kept[str(key)] = value
    return kept


def check_budget(estimate: dict, budget_bytes: int) -> None:
    needed = estimate["needed_bytes"]
    if budget_bytes is None or budget_bytes <= 0:
        raise ValidationError({"gpu_budget_bytes": ["Give a GPU memory budget."]})
    if needed > budget_bytes:
        raise ValidationError({"gpu_budget_bytes": [
            f"needs {format_gb(needed)} to {estimate['what']}, budget {format_gb(budget_bytes)}: "
            "lower the patch size, batch size, layers or filters, or raise the budget."
        ]})
