"""Algorithm 1 of the paper (Gumbel-softmax pair sampling) and the temperature schedule.

Per edge, with logits ``alpha [|O|]`` and temperature ``tau``:

1. ``z = softmax((alpha + g) / tau)``, ``g_o ~ Gumbel(0, 1)``;
2. for every unordered pair ``{o1, o2}`` of ops: ``q = (z_o1 + z_o2) / (|O| - 1)`` (these sum
   to 1: each ``z_o`` appears in ``|O| - 1`` pairs);
3. draw one pair from ``q``;
4. ``z_hat_o1 = z_o1 / (z_o1 + z_o2)``, ``z_hat_o2 = z_o2 / (z_o1 + z_o2)``, every other op 0.

Only the two drawn ops are then computed (:mod:`.supernet`). The marginal chance that op ``o``
is in the pair is ``z_o + (1 - z_o) / (|O| - 1)``.

Randomness: the Gumbel noise and the pair draw come from torch's default CPU generator (so a
checkpoint's RNG state replays them exactly, whatever the device); one Gumbel sample per step,
as in GDAS (the paper's "expectation approximated with epsilon-sampling" gives no count).

Temperature (the paper gives no schedule): annealed per step from ``tau_max`` to ``tau_min``
over the architecture steps, linearly (GDAS: 10 -> 0.1) or exponentially; it is a buffer of the
supernet, so it is saved in every checkpoint.
"""

from __future__ import annotations

import math
from functools import cache

import torch

__all__ = ["pair_table", "pair_probabilities", "sample_pairs", "PairSample", "temperature_at"]


@cache
def pair_table(num_ops: int) -> torch.Tensor:
    """``[P, 2]`` (long) every unordered pair ``(o1, o2)``, ``o1 < o2``, in lexicographic order;
    ``P = num_ops * (num_ops - 1) / 2`` (28 for 8 ops)."""
    return torch.combinations(torch.arange(num_ops), r=2)


def pair_probabilities(z: torch.Tensor) -> torch.Tensor:
    """``q [..., P]`` of every pair of :func:`pair_table` from ``z [..., |O|]`` (step 2)."""
    pairs = pair_table(z.shape[-1]).to(z.device)
    return (z[..., pairs[:, 0]] + z[..., pairs[:, 1]]) / (z.shape[-1] - 1)


class PairSample:
    """One draw of Algorithm 1 for a batch of edges.

    Attributes:
        ops: ``[E, 2]`` long, the two sampled op indices per edge (``ops[:, 0] < ops[:, 1]``).
        weights: ``[E, 2]`` the renormalised weights ``z_hat`` of those ops (differentiable in
            alpha; each row sums to 1).
        z: ``[E, |O|]`` the relaxed ``softmax((alpha + g) / tau)``.
    """

    def __init__(self, ops: torch.Tensor, weights: torch.Tensor, z: torch.Tensor):
        self.ops, self.weights, self.z = ops, weights, z

    def dense(self) -> torch.Tensor:
        """``[E, |O|]`` z_hat with zeros for the ops not drawn."""
        out = torch.zeros_like(self.z)
        return out.scatter(1, self.ops.to(self.z.device), self.weights)


def sample_pairs(alpha: torch.Tensor, tau: float | torch.Tensor) -> PairSample:
    """Algorithm 1 over every row of ``alpha [E, |O|]`` at temperature ``tau``."""
    if alpha.dim() != 2 or alpha.shape[1] < 2:
        raise ValueError(f"alpha must be [edges, ops >= 2], got {tuple(alpha.shape)}")
    tau = float(tau)
    if not tau > 0:
        raise ValueError(f"the temperature must be > 0, got {tau}")
    gumbel = -torch.empty(alpha.shape, dtype=torch.float64).exponential_().log()  # CPU generator
    z = torch.softmax((alpha + gumbel.to(alpha.device, alpha.dtype)) / tau, dim=-1)
    q = pair_probabilities(z.detach().double().cpu())
    choice = torch.multinomial(q, 1).squeeze(1)  # CPU generator
    ops = pair_table(alpha.shape[1])[choice]  # [E, 2]
    ops_dev = ops.to(alpha.device)
    picked = z.gather(1, ops_dev)
    weights = picked / picked.sum(1, keepdim=True)
    return PairSample(ops, weights, z)


def temperature_at(step: int, total: int, tau_max: float, tau_min: float, shape: str = "linear") -> float:
    """Temperature after ``step`` of ``total`` annealing steps (``step`` 0 -> ``tau_max``,
    ``step >= total - 1`` -> ``tau_min``); ``shape`` ``linear`` or ``exponential``."""
    if total <= 1:
        return float(tau_min) if step > 0 else float(tau_max)
    t = min(max(step, 0), total - 1) / (total - 1)
    if shape == "linear":
        return float(tau_max - (tau_max - tau_min) * t)
    if shape == "exponential":
        return float(tau_max * math.exp(math.log(tau_min / tau_max) * t))
    raise ValueError(f"unknown temperature schedule {shape!r}: linear or exponential")
