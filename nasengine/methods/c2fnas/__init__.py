"""C2FNAS (Yu et al., CVPR 2020): coarse-to-fine NAS for 3D medical image segmentation.

Modules: ``ops`` (cell ops 3D / P3D / 2D, stem, down-sampling; registered at import),
``space`` (924 topology codes, 3^12 op colourings, the cell-input rules), ``genotypes``
(version-2 documents, kind ``ushape``), ``evolution`` (Algorithm 1, event-driven),
``supernet`` (the fine stage's single-path one-shot supernet), ``config`` (settings and
presets), ``memory`` (estimates), ``search`` (the stages), ``method`` (the plug-in ``METHOD``).
"""

from . import ops  # noqa: F401  (registers the C2FNAS ops)
from .config import PRESETS, C2FNASConfig
from .method import C2FNASMethod

METHOD = C2FNASMethod()

__all__ = ["C2FNASConfig", "PRESETS", "C2FNASMethod", "METHOD"]
