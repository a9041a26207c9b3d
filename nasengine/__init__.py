"""VoxelSearch engine: neural architecture search for 3D medical image segmentation.

Public API (re-exported lazily from ``nasengine.api`` so that ``import nasengine.data`` stays
light): ``list_methods``, ``make_demo_data``, ``estimate``, ``search``, ``retrain``,
``predict``, ``retrain_schema``, ``make_retrain_config``, ``checkpoint_exists``. Command line: ``python -m nasengine --help``.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("list_methods", "make_demo_data", "estimate", "search", "retrain", "predict",
        "retrain_schema", "make_retrain_config", "checkpoint_exists", "prepare_data",
        "control_architecture", "evaluate", "decide_postprocessing", "make_ensemble")

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from nasengine import api

        return getattr(api, name)
    raise AttributeError(f"module 'nasengine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
