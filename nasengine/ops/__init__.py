"""Shared op vocabulary: ``OPS[name] -> OpSpec(build, memory, ...)``.

Cell ops (``skip``, ``conv_3x3x3``, ``p3d_3x3x1``, ``p3d_3x1x3``, ``p3d_1x3x3``) are
ReLU -> conv -> InstanceNorm (``skip`` is the identity); ``down``/``up`` resample by 2;
``stem``, ``head_up`` and ``head_out`` are the fixed parts of a DiNTS-style network.
"""

from .measure import saved_activation_bytes
from .table import CELL_OPS, DINTS_CELL_OPS, OPS, RESAMPLE_OPS, OpSpec, get_op

__all__ = ["OPS", "OpSpec", "CELL_OPS", "DINTS_CELL_OPS", "RESAMPLE_OPS", "get_op", "saved_activation_bytes"]
