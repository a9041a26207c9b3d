"""A pytest plugin that registers UXNet before collection, to run the shared contract suite over
it while ``BUILTIN_METHODS`` has no UXNet line yet (the lead's to add):

    PYTHONPATH=tests/nasengine/methods/uxnet .venv/bin/python -m pytest tests/contract \
        -p uxnet_contract_plugin -k uxnet

Once the registry line is there this plugin changes nothing (the method is registered already).
"""

from nasengine.methods import register, registry
from nasengine.methods.uxnet import METHOD


def pytest_configure(config):
    if "uxnet" not in registry:
        register(METHOD)
