"""Registry of search methods. Each method lives in its own sub-package (``dints/`` ...)."""
from __future__ import annotations

import importlib

from nasengine.methods.base import DataSettings, MemoryEstimate, SearchData, SearchMethod

registry: dict[str, SearchMethod] = {}

BUILTIN_METHODS = ("nasengine.methods.dints",)


class UnknownMethodError(KeyError):
    """``str()`` is one line naming the known methods."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register(method: SearchMethod) -> SearchMethod:
    """Add (or replace) a method under ``method.name``; returns it (usable as a decorator on
    instances)."""
    if not method.name:
        raise ValueError("a search method needs a name")
    registry[method.name] = method
    return method


def unregister(name: str) -> None:
    registry.pop(name, None)


def get_method(name: str) -> SearchMethod:
    """The registered method ``name``; ``UnknownMethodError`` lists the known ones."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none installed"
        raise UnknownMethodError(f"unknown search method {name!r}; known methods: {known}") \
            from None


def _load_builtin(module_name: str) -> None:
    """Import a method sub-package. It may call ``register()`` itself or expose
    ``METHOD`` (an instance) or a ``SearchMethod`` subclass, which is then registered."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not written / not installed
            return
        raise
    candidate = getattr(module, "METHOD", None)
    if candidate is None:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, SearchMethod) \
                    and value is not SearchMethod and getattr(value, "name", ""):
                candidate = value()
                break
    if isinstance(candidate, SearchMethod) and candidate.name not in registry:
        register(candidate)


for _name in BUILTIN_METHODS:
    _load_builtin(_name)

__all__ = ["registry", "register", "unregister", "get_method", "SearchMethod", "SearchData",
           "MemoryEstimate", "DataSettings", "UnknownMethodError"]
