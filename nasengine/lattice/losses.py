"""DiNTS relaxation and architecture losses (eqs. 2, 5-10) as pure tensor functions.

Shapes: ``L`` layers, ``E`` edges per super node, ``N`` cell ops, ``M = 2^E - 1`` connection
patterns, ``A = 2^D - 1`` node activation patterns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "log_eta",
    "edge_marginals",
    "entropy_alpha",
    "entropy_eta",
    "topology_loss",
    "expected_memory",
    "memory_loss",
    "TOPOLOGY_EPS",
]

#: Added inside the logs of eq. 7 so that probabilities of 0 or 1 stay finite (as MONAI does).
TOPOLOGY_EPS = 1e-5


def _log_norm(edge_logits: torch.Tensor) -> torch.Tensor:
    """``log(1 - prod_e (1 - p_e))``: log of eq. 2's denominator (all non-empty patterns)."""
    log_empty = F.logsigmoid(-edge_logits).sum(-1)
    return torch.log(-torch.expm1(log_empty))


def log_eta(edge_logits: torch.Tensor, cp: torch.Tensor) -> torch.Tensor:
    """Eq. 2 in log space.

    Args:
        edge_logits: ``[L, E]``, ``p_e = sigmoid(edge_logits)``.
        cp: ``[M, E]`` 0/1 pattern indicators (float, same device).

    Returns:
        ``[L, M]`` ``log eta_j^i``; ``exp`` of each row sums to 1 over the M non-empty patterns.
    """
    logp = F.logsigmoid(edge_logits)
    log1mp = F.logsigmoid(-edge_logits)
    return logp @ cp.T + log1mp @ (1 - cp).T - _log_norm(edge_logits)[:, None]


def edge_marginals(edge_logits: torch.Tensor) -> torch.Tensor:
    """``[L, E]`` ``sum_j eta_j cp_j(e) = p_e / (1 - prod_e' (1 - p_e'))``.

    Every pattern that contains ``e`` is non-empty, so the numerator is ``p_e`` exactly; this is
    the weight with which eq. 1 adds edge ``e``'s cell output into its super node.
    """
    return torch.exp(F.logsigmoid(edge_logits) - _log_norm(edge_logits)[:, None])


def entropy_alpha(op_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 5, ``L_alpha``: mean over ``[L, E, N]`` of ``-alpha log alpha``, alpha = softmax."""
    logp = F.log_softmax(op_logits, dim=-1)
    return -(logp.exp() * logp).mean()


def entropy_eta(log_eta_: torch.Tensor) -> torch.Tensor:
    """Eq. 5, ``L_eta``: mean over ``[L, M]`` of ``-eta log eta``."""
    return -(log_eta_.exp() * log_eta_).mean()


def topology_loss(eta: torch.Tensor, f_in: torch.Tensor, f_out: torch.Tensor, eps: float = TOPOLOGY_EPS) -> torch.Tensor:
    """Eqs. 6-7 (unweighted; the caller multiplies by lambda).

    Args:
        eta: ``[L, M]`` pattern probabilities.
        f_in, f_out: ``[M, A]`` indicator matrices of ``F_in(a)`` / ``F_out(a)``.

    Returns:
        ``-sum_{i<L} sum_a p_in^i(a) log p_out^i(a) + (1 - p_in^i(a)) log(1 - p_out^i(a))``
        with ``p_in^i = eta^i F_in``, ``p_out^i = eta^{i+1} F_out``.
    """
    p_in = eta[:-1] @ f_in
    p_out = eta[1:] @ f_out
    return -(p_in * torch.log(p_out + eps) + (1 - p_in) * torch.log(1 - p_out + eps)).sum()


def expected_memory(marginals: torch.Tensor, alpha: torch.Tensor, op_costs: torch.Tensor, edge_costs: torch.Tensor) -> torch.Tensor:
    """Eq. 8 with the pattern sum folded into edge marginals.

    ``M_e = sum_i sum_j eta_j^i sum_e cp_j(e) M^{i,e} = sum_i sum_e m_e^i M^{i,e}`` with
    ``M^{i,e} = edge_costs[e] + sum_n alpha_n^{i,e} op_costs[e, n]`` (``edge_costs``: the
    resampling before the cell on a down/up edge).

    Args:
        marginals: ``[L, E]``; alpha: ``[L, E, N]`` softmax op weights;
        op_costs: ``[E, N]`` bytes; edge_costs: ``[E]`` bytes.
    """
    cell = edge_costs[None, :] + (alpha * op_costs[None]).sum(-1)
    return (marginals * cell).sum()


def memory_loss(marginals: torch.Tensor, alpha: torch.Tensor, op_costs: torch.Tensor, edge_costs: torch.Tensor, sigma: float) -> torch.Tensor:
    """Eq. 10, ``|M_e / M_a - sigma|``.

    ``M_a`` (eq. 9) is read as the reference implementation (MONAI) does: every edge on (edge
    weight 1) with the cells at their current alpha. Taken literally (each of the 2^E - 1
    patterns with weight 1) eq. 9 would count every edge 2^(E-1) times, so ``M_e / M_a`` could
    never exceed 2^(1-E) and no sigma in (0, 1] could be met.
    """
    m_e = expected_memory(marginals, alpha, op_costs, edge_costs)
    m_a = expected_memory(torch.ones_like(marginals), alpha, op_costs, edge_costs)
    return (m_e / m_a - sigma).abs()
