"""DiNTS's cell op list (sec. 3.2), in the order of the paper and of MONAI.

The order is the last axis of the op logits ``alpha`` and of the op cost tables. The ops
themselves are shared and registered by :mod:`nasengine.ops`.
"""

__all__ = ["DINTS_CELL_OPS"]

DINTS_CELL_OPS: tuple[str, ...] = ("skip", "conv_3x3x3", "p3d_3x3x1", "p3d_3x1x3", "p3d_1x3x3")
