"""SCNAS (Kim et al., MICCAI 2019): scalable NAS for 3D medical image segmentation.

Modules: ``ops`` (the 8 candidate ops and the fixed macro ops, registered at import),
``space`` (4 cell types x 14 edges x 8 ops, the macro U-Net), ``sampling`` (Algorithm 1 and the
temperature schedule), ``supernet``, ``derive`` (argmax, zero = no edge, dead nodes),
``genotypes`` (version-2 documents, kind ``cells``), ``network`` (the discrete builder; the
shared ``nasengine.genotype`` builder and figures give the same network and exact memory),
``memory`` (estimates), ``losses`` (Jaccard distance), ``config`` (settings and presets),
``method`` (the plug-in ``METHOD``).
"""

from . import ops  # noqa: F401  (registers the SCNAS ops)
from .config import PRESETS, SCNASConfig
from .method import SCNASMethod
from .supernet import SCNASSupernet

METHOD = SCNASMethod()

__all__ = ["SCNASConfig", "PRESETS", "SCNASSupernet", "SCNASMethod", "METHOD"]
