"""DiNTS (He et al., CVPR 2021): differentiable network topology search.

The lattice itself (search space, losses of eqs. 2 and 5-10, the exact decode of eqs. 3-4,
genotype writers, cost tables, the generic supernet) is shared with other lattice methods in
:mod:`nasengine.lattice`. DiNTS's own modules: ``cell_ops`` (its five ops), ``model_search``
(the supernet with the fused mixed node), ``memory`` (estimates), ``config`` (settings,
presets), ``method`` (the registry plug-in ``METHOD``), ``bench_support`` (the MONAI benchmark).
"""

from ...lattice.decode import Decoded, decode
from ...lattice.space import SearchSpace, get_space
from .cell_ops import DINTS_CELL_OPS
from .config import PRESETS, DiNTSConfig
from .memory import estimate_memory
from .method import DiNTSMethod
from .model_search import DiNTSSupernet

METHOD = DiNTSMethod()

__all__ = ["DiNTSConfig", "PRESETS", "DINTS_CELL_OPS", "DiNTSSupernet", "SearchSpace", "get_space", "decode",
           "Decoded", "estimate_memory", "DiNTSMethod", "METHOD"]
