"""Lattice relaxation (DiNTS eq. 2) and architecture losses (eqs. 5-10) against direct hand
computations. (Agreement with MONAI is a DiNTS reference: tests/nasengine/methods/dints.)"""

import math

import numpy as np
import pytest
import torch

from nasengine.lattice import losses
from nasengine.lattice.space import get_space

torch.manual_seed(0)


def _cp(s):
    return torch.from_numpy(s.cp).double()


def _eta_direct(b: np.ndarray, s) -> np.ndarray:
    """Eq. 2 literally: products over edges, normalised over the M non-empty patterns."""
    p = 1 / (1 + np.exp(-b))
    eta = np.zeros((b.shape[0], s.M))
    for i in range(b.shape[0]):
        for j in range(s.M):
            eta[i, j] = math.prod(p[i, e] if s.cp[j, e] else 1 - p[i, e] for e in range(s.E))
        eta[i] /= eta[i].sum()
    return eta


@pytest.mark.parametrize("D", [2, 3, 4])
def test_eta_sums_to_one_and_matches_eq2(D):
    s = get_space(D)
    b = torch.randn(3, s.E, dtype=torch.float64) * 2
    eta = losses.log_eta(b, _cp(s)).exp()
    torch.testing.assert_close(eta.sum(-1), torch.ones(3, dtype=torch.float64))
    if D <= 3:
        np.testing.assert_allclose(eta.numpy(), _eta_direct(b.numpy(), s), rtol=1e-10, atol=1e-14)


def test_eta_is_stable_for_extreme_logits():
    s = get_space(3)
    b = torch.tensor([[-30.0] * s.E, [30.0] * s.E, [-30.0] + [30.0] * (s.E - 1)], dtype=torch.float64)
    le = losses.log_eta(b, _cp(s))
    assert torch.isfinite(le).all()
    torch.testing.assert_close(le.exp().sum(-1), torch.ones(3, dtype=torch.float64))
    # all edges off: the single-edge patterns share the mass equally
    single = s.cp.sum(1) == 1
    np.testing.assert_allclose(le.exp()[0].numpy()[single], np.full(s.E, 1 / s.E), rtol=1e-6)


@pytest.mark.parametrize("D", [2, 3])
def test_edge_marginals_are_the_pattern_sums(D):
    s = get_space(D)
    b = torch.randn(4, s.E, dtype=torch.float64)
    eta = losses.log_eta(b, _cp(s)).exp()
    torch.testing.assert_close(losses.edge_marginals(b), eta @ _cp(s))


def test_entropy_alpha_hand_case():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # alpha = (1/4, 3/4)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / 2  # 1 / (L E N) with L=E=1, N=2
    assert float(losses.entropy_alpha(logits)) == pytest.approx(h, rel=1e-6)


def test_entropy_eta_hand_case():
    s = get_space(2)
    b = torch.randn(2, s.E, dtype=torch.float64)
    eta = _eta_direct(b.numpy(), s)
    h = -(eta * np.log(eta)).sum() / (2 * s.M)
    assert float(losses.entropy_eta(losses.log_eta(b, _cp(s)))) == pytest.approx(h, rel=1e-10)


def test_topology_loss_hand_case():
    s = get_space(2)
    b = torch.randn(3, s.E, dtype=torch.float64) * 2
    eta = _eta_direct(b.numpy(), s)
    eps = losses.TOPOLOGY_EPS
    levels_in = [frozenset(e.source for e in s.edges if s.cp[j, e.index]) for j in range(s.M)]
    levels_out = [frozenset(e.target for e in s.edges if s.cp[j, e.index]) for j in range(s.M)]
    acts = [frozenset(x) for x in ({0}, {1}, {0, 1})]
    total = 0.0
    for i in range(2):
        for a in acts:
            p_in = sum(eta[i, j] for j in range(s.M) if levels_out[j] == a)
            p_out = sum(eta[i + 1, j] for j in range(s.M) if levels_in[j] == a)
            total -= p_in * math.log(p_out + eps) + (1 - p_in) * math.log(1 - p_out + eps)
    ours = losses.topology_loss(torch.from_numpy(eta), torch.from_numpy(s.f_in_matrix).double(),
                                torch.from_numpy(s.f_out_matrix).double())
    assert float(ours) == pytest.approx(total, rel=1e-10)


def test_topology_loss_is_low_for_a_consistent_topology():
    s = get_space(3)
    f_in, f_out = (torch.from_numpy(m).double() for m in (s.f_in_matrix, s.f_out_matrix))
    on = torch.full((3, s.E), 20.0, dtype=torch.float64)  # every layer: all edges (feasible chain)
    mixed = on.clone()
    mixed[1] = -20.0
    mixed[1, 0] = 20.0  # layer 2 reads only level 0: levels 1, 2 of layer 1 dead ends
    lo = losses.topology_loss(losses.log_eta(on, _cp(s)).exp(), f_in, f_out)
    hi = losses.topology_loss(losses.log_eta(mixed, _cp(s)).exp(), f_in, f_out)
    assert float(lo) < 1e-3 < float(hi)


def _memory_direct(b, alpha, op_costs, edge_costs, sigma, s):
    eta = _eta_direct(b, s)
    cell = edge_costs[None] + (alpha * op_costs[None]).sum(-1)  # [L, E]
    m_e = sum(eta[i, j] * sum(cell[i, e] * s.cp[j, e] for e in range(s.E)) for i in range(b.shape[0]) for j in range(s.M))
    m_a = cell.sum()
    return abs(m_e / m_a - sigma)


def test_memory_loss_hand_case():
    s = get_space(2)
    rng = np.random.default_rng(0)
    b = rng.normal(size=(2, s.E))
    alpha = rng.dirichlet(np.ones(5), size=(2, s.E))
    op_costs = rng.uniform(0, 10, size=(s.E, 5))
    edge_costs = rng.uniform(0, 3, size=s.E)
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    ours = losses.memory_loss(losses.edge_marginals(t(b)), t(alpha), t(op_costs), t(edge_costs), 0.3)
    assert float(ours) == pytest.approx(_memory_direct(b, alpha, op_costs, edge_costs, 0.3, s), rel=1e-10)


@pytest.mark.parametrize("sigma,sign", [(0.05, 1.0), (0.99, -1.0)])
def test_memory_loss_gradient_sign(sigma, sign):
    """Over budget the loss pushes edge probabilities down, under budget up."""
    s = get_space(3)
    b = torch.zeros(2, s.E, dtype=torch.float64, requires_grad=True)
    alpha = torch.full((2, s.E, 5), 0.2, dtype=torch.float64)
    op_costs = torch.rand(s.E, 5, dtype=torch.float64) + 0.5
    edge_costs = torch.rand(s.E, dtype=torch.float64)
    loss = losses.memory_loss(losses.edge_marginals(b), alpha, op_costs, edge_costs, sigma)
    loss.backward()
    assert float(b.grad.sum()) * sign > 0


def test_memory_loss_prefers_cheap_ops():
    s = get_space(2)
    op_logits = torch.zeros(1, s.E, 5, dtype=torch.float64, requires_grad=True)
    op_costs = torch.tensor([[0.0, 4.0, 3.0, 3.0, 3.0]] * s.E, dtype=torch.float64)
    # alpha enters M_e and M_a alike, so use the marginal-free ratio's numerator via sigma = 0
    loss = losses.expected_memory(losses.edge_marginals(torch.zeros(1, s.E, dtype=torch.float64)),
                                  torch.softmax(op_logits, -1), op_costs, torch.zeros(s.E, dtype=torch.float64))
    loss.backward()
    g = op_logits.grad[0, 0]
    assert g[0] < 0 < g[1]  # more skip lowers memory, more conv raises it
