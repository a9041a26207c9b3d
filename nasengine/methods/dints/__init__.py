"""DiNTS (He et al., CVPR 2021): differentiable network topology search.

Modules: ``space`` (edges, connection patterns, feasibility sets), ``losses`` (eqs. 2, 5-10),
``model_search`` (the supernet), ``decode`` (eqs. 3-4 by dynamic programming), ``genotypes``
(architectures as genotype documents), ``memory`` (estimates), ``config`` (settings, presets),
``method`` (the registry plug-in ``METHOD``).
"""

from .config import PRESETS, DiNTSConfig
from .decode import Decoded, decode
from .memory import estimate_memory
from .model_search import DiNTSSupernet
from .space import SearchSpace, get_space

try:
    from .method import DiNTSMethod

    METHOD = DiNTSMethod()
except ImportError:  # pragma: no cover - the methods base package is missing
    DiNTSMethod = None  # type: ignore[assignment,misc]
    METHOD = None

__all__ = ["DiNTSConfig", "PRESETS", "DiNTSSupernet", "SearchSpace", "get_space", "decode", "Decoded",
           "estimate_memory", "DiNTSMethod", "METHOD"]
