"""DAST (Yang et al.): differentiable architecture search with transformers on DiNTS's lattice.

The lattice (space, eqs. 2 and 5-10, exact decode, genotype writers, generic supernet) is the
shared :mod:`nasengine.lattice`; DAST's own modules: ``transformer`` (the op's modules),
``ops`` (its registry entry with exact memory and FLOPs, registered at import, and the cell
op list), ``supernet``, ``memory`` (estimates), ``config`` (settings, presets, retraining
presets), ``attention`` (attention maps of a retrained model, as NIfTI), ``method`` (the
plug-in ``METHOD``).
"""

from . import ops  # noqa: F401  (registers the transformer op)
from .config import PRESETS, RETRAIN_PRESETS, DASTConfig
from .method import DASTMethod
from .ops import DAST_CELL_OPS, TRANSFORMER
from .supernet import DASTSupernet

METHOD = DASTMethod()

__all__ = ["DASTConfig", "PRESETS", "RETRAIN_PRESETS", "DAST_CELL_OPS", "TRANSFORMER",
           "DASTSupernet", "DASTMethod", "METHOD"]
