"""Shared op vocabulary: the live registry ``OPS[name] -> OpSpec(build, memory, flops, ...)``.

``register_op(spec)`` adds an op (a method registers the ops it brings at import);
``get_op(name)`` and ``op_names()`` read the registry. Shared ops, registered here: the cell
ops ``skip``, ``conv_3x3x3``, ``conv_1x1x1``, ``p3d_3x3x1``, ``p3d_3x1x3``, ``p3d_1x3x3``
(ReLU -> conv -> InstanceNorm; ``skip`` is the identity); ``down``/``up`` (2x resampling);
``stem``, ``head_up`` and ``head_out`` (the fixed parts of a DiNTS-style network); and the
multi-input node op ``concat_conv_1x1x1``.
"""

from .measure import saved_activation_bytes
from .registry import OP_KINDS, OPS, OpSpec, get_op, op_names, register_op, unregister_op
from .table import CELL_OPS, RESAMPLE_OPS, SHARED_OPS

__all__ = [
    "OPS", "OpSpec", "OP_KINDS", "register_op", "unregister_op", "get_op", "op_names", "CELL_OPS",
    "RESAMPLE_OPS", "SHARED_OPS", "saved_activation_bytes",
]
