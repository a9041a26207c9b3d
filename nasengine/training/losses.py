"""Segmentation loss: the even sum of soft Dice and cross-entropy (DiNTS Sec. 3.6)."""
from __future__ import annotations

import torch
from monai.losses import DiceCELoss as _MonaiDiceCELoss
from torch import nn


class DiceCELoss(nn.Module):
    """MONAI ``DiceCELoss`` with softmax over logits and one-hot targets, Dice + CE weighted 1:1.

    ``forward(logits: [B, K, X, Y, Z] float, target: [B, 1, X, Y, Z] int) -> scalar``.
    As in MONAI's DiNTS reference set-up the Dice term is a batch Dice of squared predictions
    over the foreground classes; CE covers all classes. ``squared_pred=False`` is nnU-Net's
    soft Dice (``MemoryEfficientSoftDiceLoss``: batch Dice, no background, smooth 1e-5). The loss is computed in float32 even
    when the logits come from autocast.
    """

    def __init__(self, *, include_background: bool = False, smooth: float = 1e-5,
                 squared_pred: bool = True):
        super().__init__()
        self.loss = _MonaiDiceCELoss(include_background=include_background, to_onehot_y=True,
                                     softmax=True, lambda_dice=1.0, lambda_ce=1.0,
                                     smooth_nr=smooth, smooth_dr=smooth,
                                     squared_pred=squared_pred, batch=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == logits.dim() - 1:
            target = target.unsqueeze(1)
        return self.loss(logits.float(), target.long())
