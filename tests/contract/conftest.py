"""The contract suite runs every test that takes ``method_name`` once per registered method.

The method names are read from ``nasengine.methods.registry`` at collection time, plus the toy
method (``toy_method.py``): a method that is added gets the suite for free; one that fails to
import fails the import of ``nasengine.methods`` (and so every test). The toy method is in the
registry only while a contract test module runs, so it never leaks into the rest of a session
(tests elsewhere list the registry).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_runs import ContractRuns
from toy_method import ToyMethod

from nasengine.methods import register, registry, unregister

TOY = ToyMethod()


def contract_method_names() -> list[str]:
    """Every registered method and the toy method, sorted."""
    return sorted(set(registry) | {TOY.name})


@pytest.fixture(autouse=True, scope="module")
def toy_registered() -> Iterator[ToyMethod]:
    """The toy method in the registry for the duration of each contract test module."""
    added = registry.get(TOY.name) is not TOY
    register(TOY)
    yield TOY
    if added:
        unregister(TOY.name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "method_name" in metafunc.fixturenames:
        names = contract_method_names()
        metafunc.parametrize("method_name", names, ids=names)


@pytest.fixture(scope="session")
def contract_runs(tmp_path_factory: pytest.TempPathFactory) -> ContractRuns:
    """The expensive runs (searches, retrains), done once per method for the whole session."""
    return ContractRuns(tmp_path_factory.mktemp("contract"))
