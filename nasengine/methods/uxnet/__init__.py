"""UXNet (Ji et al., MICCAI 2020): searching multi-level feature aggregation for 3D medical
image segmentation. Not "3D UX-Net" (Lee et al. 2022), a large-kernel ConvNet.

Modules: ``ops`` (the 7 normal, 3 reduction and 2 expansion ops of the SBB, the transform T,
stem and head; registered at import), ``space`` (our reading of Fig. 3: nodes N(i, j), 46
searchable and 4 constant connections at depth 4), ``supernet`` (softmax-weighted SBB layers,
sigmoid-gated sums of eq. 1, the polarisation term J of eq. 2, live gate statistics),
``derive`` (threshold tau, dead-node removal, argmax ops, a kept path; the genotype document,
kind ``graph``), ``memory`` (estimates), ``config`` (settings and presets), ``method`` (the
plug-in ``METHOD``).
"""

from . import ops  # noqa: F401  (registers the UXNet ops)
from .config import PRESETS, UXNetConfig
from .method import UXNetMethod
from .supernet import UXNetSupernet

METHOD = UXNetMethod()

__all__ = ["UXNetConfig", "PRESETS", "UXNetSupernet", "UXNetMethod", "METHOD"]
