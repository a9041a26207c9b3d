"""DAST tests: the method is registered here while the built-in registry line is not there yet
(``BUILTIN_METHODS`` is the lead's to edit; the package registers its op at import).

Torch runs single-threaded here: the tiny tensors of these tests are dominated by thread
hand-off on a shared 2-core machine (a supernet step measured 40x slower with 2 threads
under load than with 1).
"""

import pytest
import torch

from nasengine.methods import register, registry
from nasengine.methods.dast import METHOD


@pytest.fixture(autouse=True, scope="session")
def dast_registered():
    added = "dast" not in registry
    if added:
        register(METHOD)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield METHOD
    torch.set_num_threads(threads)
    if added:
        registry.pop("dast", None)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """A small demo dataset (MSD layout): 4 cases of 32^3."""
    from nasengine import api

    return api.make_demo_data(tmp_path_factory.mktemp("dast-demo") / "demo", n_cases=4, shape=(32, 32, 32))


class CountingCancel:
    """A cancel callable: counts the engine's checks and cancels from check ``at`` on."""

    def __init__(self, at=None):
        self.at, self.checks = at, 0

    def __call__(self):
        self.checks += 1
        return self.at is not None and self.checks >= self.at


@pytest.fixture(scope="session")
def tiny_search(demo_data, tmp_path_factory, dast_registered):
    """The tiny preset searched through ``nasengine.api.search`` on CPU: (out dir, genotype,
    number of cancel checks)."""
    from nasengine import api
    from nasengine.events import CallableCancelToken

    out = tmp_path_factory.mktemp("dast-search") / "run"
    counter = CountingCancel()
    genotype = api.search("dast", demo_data, out, preset="tiny", device="cpu",
                          cancel=CallableCancelToken(counter))
    return out, genotype, counter.checks
