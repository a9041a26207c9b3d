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
