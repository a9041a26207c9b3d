"""Versioned JSON architecture format shared by every method (version 2; version 1 still loads).

``validate(doc)``, ``load(path)`` / ``dump(doc, path)``, ``build_network(doc) -> nn.Module``,
``derive_figures(doc, patch_size)``, ``canonical_hash(doc)`` and ``schema()`` (the JSON Schema,
op names from the registry; ``SCHEMA`` is the same, computed on access). No eval, no pickles.
"""

from .builder import GenotypeNetwork, GraphModule, build_network
from .core import FORMAT, READABLE_VERSIONS, VERSION, GenotypeError
from .figures import derive_figures
from .format import dump, dumps, load, loads, topological_order
from .hashing import canonical_form, canonical_hash
from .schema import schema
from .validate import Resolved, resolve, upgrade, validate

__all__ = [
    "FORMAT", "VERSION", "READABLE_VERSIONS", "SCHEMA", "schema", "GenotypeError", "GenotypeNetwork", "GraphModule",
    "validate", "resolve", "Resolved", "upgrade", "load", "dump", "loads", "dumps", "build_network", "derive_figures",
    "canonical_hash", "canonical_form", "topological_order",
]


def __getattr__(name: str):
    # SCHEMA was a module constant; computed per access now so the op enum follows the registry
    if name == "SCHEMA":
        return schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
