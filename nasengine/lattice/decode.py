"""Discretisation with topology constraints (sec. 3.3.3, eqs. 3-4).

The graph G of the paper is layered: node ``c_j^i`` can only be reached from layer ``i-1``
nodes ``c_m^{i-1}`` with ``j in F(m)``, and every source-to-sink path visits exactly one node
per layer. The shortest path (Dijkstra in the paper and in MONAI) is therefore the exact
dynamic programme below, in O(L * M) time and memory:

    best^1(j) = log eta^1_j
    best^i(k) = log eta^i_k + max_{j : out_nodes(j) == in_nodes(k)} best^{i-1}(j)

The inner maximum depends only on the node activation pattern ``a = in_nodes(k)``, so it is
computed once per ``a`` (``2^D - 1`` values) per layer. Back-tracking from the best last-layer
pattern gives ``I``. The source may start with any pattern (all stems exist) and every
last-layer pattern reaches the sink (all active last-layer nodes feed the head), as in MONAI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .space import SearchSpace

__all__ = ["Decoded", "log_eta_np", "best_chain", "decode"]


@dataclass
class Decoded:
    """A discrete DiNTS architecture.

    Attributes:
        patterns: ``[L]`` pattern rows ``I(i)``.
        edges: ``[L, E]`` 0/1 selected edges.
        ops: ``[L, E]`` argmax op index per edge (meaningful where ``edges == 1``).
        nodes: ``[L + 1, D]`` 0/1 active feature nodes (row 0: the stem outputs used).
        log_prob: ``sum_i log eta^i_{I(i)}`` (eq. 4, negated).
    """

    patterns: np.ndarray
    edges: np.ndarray
    ops: np.ndarray
    nodes: np.ndarray
    log_prob: float


def log_eta_np(edge_logits: np.ndarray, cp: np.ndarray) -> np.ndarray:
    """Eq. 2 in log space, float64 numpy: ``[L, E] -> [L, M]``."""
    b = np.asarray(edge_logits, dtype=np.float64)
    logp = -np.logaddexp(0.0, -b)
    log1mp = -np.logaddexp(0.0, b)
    log_norm = np.log(-np.expm1(log1mp.sum(-1)))
    cpf = cp.astype(np.float64)
    return logp @ cpf.T + log1mp @ (1.0 - cpf).T - log_norm[:, None]


def _groups(keys: np.ndarray, num: int) -> list[np.ndarray]:
    return [np.flatnonzero(keys == a) for a in range(1, num + 1)]


def best_chain(log_eta: np.ndarray, space: SearchSpace) -> tuple[np.ndarray, float]:
    """Most probable feasible chain of pattern rows (eq. 4) by dynamic programming.

    Args:
        log_eta: ``[L, M]`` log pattern probabilities.

    Returns:
        ``(rows [L], log probability of the chain)``. Ties go to the lowest pattern row.
    """
    L = log_eta.shape[0]
    by_out = _groups(space.out_nodes, space.A)  # candidates j for each activation a
    in_key = space.in_nodes - 1  # activation index a-1 each pattern k reads
    best = log_eta[0].copy()
    back = np.empty((L, space.M), dtype=np.int64)
    for i in range(1, L):
        best_a = np.empty(space.A)
        arg_a = np.empty(space.A, dtype=np.int64)
        for a, idx in enumerate(by_out):
            t = int(np.argmax(best[idx]))
            best_a[a], arg_a[a] = best[idx[t]], idx[t]
        best = log_eta[i] + best_a[in_key]
        back[i] = arg_a[in_key]
    rows = np.empty(L, dtype=np.int64)
    rows[-1] = int(np.argmax(best))
    score = float(best[rows[-1]])
    for i in range(L - 1, 0, -1):
        rows[i - 1] = back[i, rows[i]]
    return rows, score


def decode(edge_logits: np.ndarray, op_logits: np.ndarray, space: SearchSpace) -> Decoded:
    """Eqs. 3-4 then ``argmax alpha`` per selected edge.

    Args:
        edge_logits: ``[L, E]`` (``p_e = sigmoid``); op_logits: ``[L, E, N]``.
    """
    rows, score = best_chain(log_eta_np(edge_logits, space.cp), space)
    edges = space.cp[rows].astype(np.int64)
    ops = np.argmax(np.asarray(op_logits), axis=-1)
    L = len(rows)
    nodes = np.zeros((L + 1, space.D), dtype=np.int64)
    bits = 1 << np.arange(space.D)
    nodes[0] = (space.in_nodes[rows[0]] & bits) > 0
    nodes[1:] = (space.out_nodes[rows][:, None] & bits[None, :]) > 0
    return Decoded(patterns=rows, edges=edges, ops=ops, nodes=nodes, log_prob=score)
