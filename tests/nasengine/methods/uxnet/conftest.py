"""UXNet tests: the method is registered here when the built-in registry line is not there yet
(the registry line is the lead's to add; the package itself registers its ops at import)."""

import pytest

from nasengine.methods import register, registry
from nasengine.methods.uxnet import METHOD


@pytest.fixture(autouse=True, scope="session")
def uxnet_registered():
    added = "uxnet" not in registry
    if added:
        register(METHOD)
    yield METHOD
    if added:
        registry.pop("uxnet", None)
