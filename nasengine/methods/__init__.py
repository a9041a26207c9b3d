"""Registry of search methods. Each method lives in its own sub-package (``dints/`` ...).

A built-in method is one line of ``BUILTIN_METHODS`` (registry name -> package). Importing
this package imports every built-in: a package that fails to import, exposes no method, or
registers under another name raises ``MethodLoadError`` here, so a broken or misspelt method
fails loudly (at import, in the CLI, the web app and the contract suite) instead of
silently vanishing from the registry.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable

from nasengine.methods.base import DataSettings, MemoryEstimate, SearchData, SearchMethod

registry: dict[str, SearchMethod] = {}

#: Built-in methods: registry name -> package that provides it (``METHOD``, a
#: ``SearchMethod`` subclass, or a ``register()`` call at import).
BUILTIN_METHODS: dict[str, str] = {
    "c2fnas": "nasengine.methods.c2fnas",
    "dast": "nasengine.methods.dast",
    "dints": "nasengine.methods.dints",
    "scnas": "nasengine.methods.scnas",
    "uxnet": "nasengine.methods.uxnet",
}


class UnknownMethodError(KeyError):
    """No method of that name. ``str()`` is one line naming the known methods and, when the
    name looks like a misspelling, the close matches (``close_matches``)."""

    def __init__(self, message: str, close_matches: Iterable[str] = ()):
        super().__init__(message)
        self.close_matches = list(close_matches)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class MethodLoadError(ImportError):
    """A built-in method package failed to import or did not provide its method."""


def register(method: SearchMethod) -> SearchMethod:
    """Add (or replace) a method under ``method.name``; returns it (usable as a decorator on
    instances)."""
    if not method.name:
        raise ValueError("a search method needs a name")
    registry[method.name] = method
    return method


def unregister(name: str) -> None:
    registry.pop(name, None)


def close_matches(name: str, names: Iterable[str]) -> list[str]:
    """Names among ``names`` that ``name`` is probably a misspelling of (best first)."""
    return difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)


def get_method(name: str) -> SearchMethod:
    """The registered method ``name``; ``UnknownMethodError`` lists the known ones and the
    close matches of a misspelt name."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none installed"
        matches = close_matches(str(name), registry)
        hint = f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""
        raise UnknownMethodError(
            f"unknown search method {name!r}; known methods: {known}{hint}", matches) from None


def _method_of(module) -> SearchMethod | None:
    """The method a package exposes: ``METHOD`` (an instance), else the first concrete
    ``SearchMethod`` subclass defined in it (instantiated)."""
    candidate = getattr(module, "METHOD", None)
    if isinstance(candidate, SearchMethod):
        return candidate
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, SearchMethod) \
                and value is not SearchMethod and getattr(value, "name", ""):
            return value()
    return None


def load_builtin(name: str, module_name: str) -> SearchMethod:
    """Import ``module_name`` and register the method it provides under ``name``.

    Raises:
        MethodLoadError: the package does not import (the cause is chained), exposes no
            ``SearchMethod``, or its method's name is not ``name`` (a misspelt registry line).
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise MethodLoadError(f"built-in search method {name!r}: {module_name} failed to "
                              f"import: {type(exc).__name__}: {exc}", name=module_name) from exc
    if name in registry:  # the package called register() itself
        return registry[name]
    method = _method_of(module)
    if method is None:
        raise MethodLoadError(f"built-in search method {name!r}: {module_name} defines no "
                              "SearchMethod (set METHOD or define a subclass with a name)",
                              name=module_name)
    if method.name != name:
        matches = close_matches(name, [method.name])
        hint = f"; did you mean {matches[0]!r}?" if matches else ""
        raise MethodLoadError(f"BUILTIN_METHODS names {name!r} but {module_name} provides the "
                              f"method {method.name!r}{hint}", name=module_name)
    return register(method)


for _name, _module_name in BUILTIN_METHODS.items():
    load_builtin(_name, _module_name)

__all__ = ["registry", "register", "unregister", "get_method", "close_matches", "load_builtin",
           "BUILTIN_METHODS", "SearchMethod", "SearchData", "MemoryEstimate", "DataSettings",
           "UnknownMethodError", "MethodLoadError"]
