"""The paper's segmentation loss: the (soft) Jaccard distance.

``JaccardLoss``: ``1 - |P . G| / (|P| + |G| - |P . G|)`` of the softmax probabilities P and
the one-hot labels G, per foreground class over the whole batch, averaged over the classes
(MONAI ``DiceLoss(jaccard=True)``). The paper cites U-ResNet [4] for it; batch-wise sums and
the background left out are choices (the same as the shared ``DiceCELoss``).
"""

from __future__ import annotations

import torch
from monai.losses import DiceLoss
from torch import nn

__all__ = ["JaccardLoss"]


class JaccardLoss(nn.Module):
    """``forward(logits [B, K, *S] float, target [B, 1, *S] int) -> scalar`` (computed in
    float32 even under autocast)."""

    def __init__(self, *, include_background: bool = False, smooth: float = 1e-5):
        super().__init__()
        self.loss = DiceLoss(include_background=include_background, to_onehot_y=True, softmax=True,
                             jaccard=True, batch=True, smooth_nr=smooth, smooth_dr=smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim() - 1:
            target = target.unsqueeze(1)
        return self.loss(logits.float(), target.long())
