"""Synthetic search data for the DiNTS search tests: seeded random patches with a label from
thresholds, and a loader whose state resumes exactly (as the real loaders' does)."""
from __future__ import annotations

import torch

from nasengine.methods.base import SearchData


class SyntheticLoader:
    """Endless batches of 2 random ``[1, *patch]`` images; label 1 above 0.5, 2 above 1.5."""

    def __init__(self, seed: int, patch=(16, 16, 16)):
        self.g = torch.Generator().manual_seed(seed)
        self.patch = self.patch_size = patch

    def __iter__(self):
        return self

    def __next__(self):
        x = torch.randn(2, 1, *self.patch, generator=self.g)
        return {"image": x, "label": (x > 0.5).long() + (x > 1.5).long()}

    def state_dict(self):
        return {"g": self.g.get_state()}

    def load_state_dict(self, s):
        self.g.set_state(s["g"])


def synthetic_search_data() -> SearchData:
    """Search data on the CPU: train1 and train2 from two seeds, three classes, no validation."""
    return SearchData(plan=None, train1=SyntheticLoader(1), train2=SyntheticLoader(2), val_cases=[], in_channels=1,
                      out_channels=3, label_names=["background", "a", "b"], device=torch.device("cpu"))
