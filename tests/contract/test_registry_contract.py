"""The registry itself: every built-in is there, the toy method plugged in from its own file,
and a missing, misspelt or broken method fails loudly (never a skip)."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TOY, contract_method_names

import nasengine.methods as methods_package
from nasengine.methods import (
    BUILTIN_METHODS,
    MethodLoadError,
    SearchMethod,
    UnknownMethodError,
    get_method,
    load_builtin,
    registry,
)


def test_every_builtin_method_is_registered_under_its_name():
    assert BUILTIN_METHODS, "BUILTIN_METHODS lists no method"
    missing = sorted(set(BUILTIN_METHODS) - set(registry))
    assert not missing, f"built-in methods missing from the registry: {missing}"
    for name in BUILTIN_METHODS:
        assert registry[name].name == name


def test_every_method_package_is_a_builtin():
    """A method folder left out of BUILTIN_METHODS would never be registered nor tested."""
    root = Path(methods_package.__file__).parent
    packages = {f"nasengine.methods.{p.name}" for p in root.iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    assert packages, "no method package found"
    assert sorted(packages - set(BUILTIN_METHODS.values())) == []


def test_the_suite_covers_every_builtin_and_the_toy_method():
    names = contract_method_names()
    assert set(BUILTIN_METHODS) | {TOY.name} <= set(names)
    assert get_method(TOY.name) is TOY


def test_method_declares_what_the_contract_needs(method_name):
    method = get_method(method_name)
    assert isinstance(method, SearchMethod)
    assert method.name == method_name and method.paper and method.description
    assert {"paper", "tiny"} <= set(method.presets), "presets need at least paper and tiny"
    assert method.default_preset in method.presets


def test_misspelt_method_name_raises_naming_the_close_match():
    with pytest.raises(UnknownMethodError) as info:
        get_method(TOY.name + "s")
    assert info.value.close_matches[0] == TOY.name
    assert f"did you mean {TOY.name!r}?" in str(info.value)
    assert str(info.value).startswith(f"unknown search method '{TOY.name}s'; known methods: ")


def test_unknown_method_name_without_close_match_lists_the_known_methods():
    with pytest.raises(UnknownMethodError) as info:
        get_method("zzzzzzzz")
    assert info.value.close_matches == []
    assert str(info.value) == ("unknown search method 'zzzzzzzz'; known methods: "
                               + ", ".join(sorted(registry)))


@pytest.fixture
def method_package(tmp_path, monkeypatch):
    """Write a throw-away package ``contract_pkg_<n>`` and return a function that creates it
    from source text; the package is importable for this test only."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"contract_pkg_{len(created)}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)
        registry.pop(name, None)


def test_builtin_whose_import_fails_raises_with_the_cause(method_package):
    module = method_package("from . import not_written_yet  # a missing module inside\n")
    with pytest.raises(MethodLoadError, match=f"'broken': {module} failed to import: "
                                              "ImportError") as info:
        load_builtin("broken", module)
    assert isinstance(info.value.__cause__, ImportError)
    assert "broken" not in registry


def test_builtin_that_is_not_installed_raises_not_skips():
    with pytest.raises(MethodLoadError, match="ModuleNotFoundError"):
        load_builtin("ghost", "nasengine.methods.ghost_method_not_written")
    assert "ghost" not in registry


def test_builtin_that_defines_no_method_raises(method_package):
    module = method_package("VALUE = 1\n")
    with pytest.raises(MethodLoadError, match="defines no SearchMethod"):
        load_builtin("empty", module)


def test_misspelt_builtin_line_raises_naming_the_method_it_found(method_package):
    module = method_package("""
        from nasengine.methods import SearchMethod

        class Spelt(SearchMethod):
            name = "spelt"
        """)
    with pytest.raises(MethodLoadError, match="names 'spel' but .* provides the method "
                                              "'spelt'; did you mean 'spelt'"):
        load_builtin("spel", module)
    assert "spel" not in registry and "spelt" not in registry


def test_builtin_line_registers_the_method_its_package_exposes(method_package):
    module = method_package("""
        from nasengine.methods import SearchMethod

        class Fine(SearchMethod):
            name = "contract_pkg_0"

        METHOD = Fine()
        """)
    method = load_builtin(module, module)
    assert registry[module] is method and type(method).__name__ == "Fine"

