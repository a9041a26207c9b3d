"""A second search method for the web tests only (no tests here): the workhorse's search under
another name, with settings that use every construct the launch form renders (a nested
object, an array of strings, an array of enums, per-field help) and retraining presets of its
own. Registered in the real engine registry by ``registered_webtoy()`` for one test.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal

from test_runs_support import WORKHORSE_METHOD

from nasengine.methods import get_method

_WORKHORSE = get_method(WORKHORSE_METHOD)

NAME = "webtoy"
#: A retraining preset only this method has: the shared presets do not know it.
OWN_RETRAIN_PRESET = "quick"
OWN_RETRAIN_STEPS = 3


@dataclass
class FlipSettings:
    """How training patches are flipped."""

    enabled: bool = field(default=True, metadata={"description": "Flip training patches at random."})
    axes: list[Literal["x", "y", "z"]] = field(
        default_factory=lambda: ["x", "y"], metadata={"description": "The axes a patch may be flipped along."})


@dataclass
class WebToyConfig(_WORKHORSE.config_class):
    flips: FlipSettings = field(default_factory=FlipSettings, metadata={"description": "Patch flipping."})
    tags: list[str] = field(default_factory=list, metadata={"description": "Free labels for the run list."})


class WebToyMethod(type(_WORKHORSE)):
    name = NAME
    description = "The workhorse's search with extra settings (web tests only)."
    config_class = WebToyConfig
    retrain_presets = {
        OWN_RETRAIN_PRESET: {"warmup_steps": 1, "steps": OWN_RETRAIN_STEPS, "lr_milestones": [2], "batch_size": 1,
                             "patch_size": [32, 32, 32], "validate_every": 0, "checkpoint_every": 0},
    }


@contextlib.contextmanager
def registered_webtoy():
    """The toy method in the registry (and in the web app's cached catalogue) while inside."""
    from nasengine.methods import register, unregister
    from webapp.runs import engine

    register(WebToyMethod())
    engine.forget_methods()
    try:
        yield NAME
    finally:
        unregister(NAME)
        engine.forget_methods()
