"""Versioned JSON architecture format shared by every method.

``validate(doc)``, ``load(path)`` / ``dump(doc, path)``, ``build_network(doc) -> nn.Module``,
``derive_figures(doc, patch_size)`` and ``SCHEMA`` (the JSON Schema document). No eval, no pickles.
"""

import json
from importlib import resources

from .builder import GenotypeNetwork, build_network
from .figures import derive_figures
from .format import FORMAT, VERSION, GenotypeError, dump, dumps, load, loads, topological_order, validate

SCHEMA: dict = json.loads(resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8"))

__all__ = [
    "FORMAT", "VERSION", "SCHEMA", "GenotypeError", "GenotypeNetwork", "validate", "load", "dump",
    "loads", "dumps", "build_network", "derive_figures", "topological_order",
]
