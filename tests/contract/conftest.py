"""The contract suite runs every test that takes ``method_name`` once per registered method.

The toy method (``toy_method.py``) is registered here, at import, before the test modules are
collected, so the parametrisation sees it beside the built-ins. The method names are read from
``nasengine.methods.registry`` at collection time: a method that is added gets the suite for
free; one that fails to import fails the import of ``nasengine.methods`` (and so every test).
"""
from __future__ import annotations

import pytest
from contract_runs import ContractRuns
from toy_method import ToyMethod

from nasengine.methods import register, registry

TOY = register(ToyMethod())


def contract_method_names() -> list[str]:
    """Every registered method, sorted (the built-ins plus the toy method)."""
    return sorted(registry)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "method_name" in metafunc.fixturenames:
        names = contract_method_names()
        metafunc.parametrize("method_name", names, ids=names)


@pytest.fixture(scope="session")
def contract_runs(tmp_path_factory: pytest.TempPathFactory) -> ContractRuns:
    """The expensive runs (searches, retrains), done once per method for the whole session."""
    return ContractRuns(tmp_path_factory.mktemp("contract"))
