"""Our reading of Fig. 3 (46 searchable + 4 constant connections at depth 4), the supernet's
initial state (uniform softmax(alpha), sigma(beta) = 0.5), the polarisation term J of eq. 2,
the live gate statistics and the supernet's exact memory."""

import math

import pytest
import torch

from nasengine.methods.uxnet.memory import supernet_activation_bytes
from nasengine.methods.uxnet.space import DECODER_SBB, ENCODER_SBB, TRANSFORM, Node, Space
from nasengine.methods.uxnet.supernet import HISTOGRAM_BINS, UXNetSupernet, gate_statistics, polarisation
from nasengine.ops import saved_activation_bytes


def test_fig3_reading_at_the_papers_depth():
    s = Space(4)
    assert s.n_gates == 46 and len(s.constant_connections) == 4 and len(s.connections) == 50
    assert sorted((c.source.id, c.target.id) for c in s.constant_connections) == [
        ("n0_0", "n0_1"), ("n0_1", "n0_2"), ("n0_2", "n0_3"), ("n0_3", "n0_4")]
    assert all(c.kind == ENCODER_SBB for c in s.constant_connections)
    encoder = [c for c in s.connections if c.target.stage == 0]
    assert len(encoder) == 10 and sum(c.gated for c in encoder) == 6
    decoder = [c for c in s.connections if c.target.stage > 0]
    assert len(decoder) == 5 * 4 + 4 * 3 + 3 * 2 + 2 * 1 and all(c.gated for c in decoder)
    assert (s.n_encoder_sbb, s.n_decoder_sbb, s.n_sbb) == (4, 10, 14)


def test_the_lowest_level_is_dropped_at_each_later_stage():
    s = Space(4)
    levels = {i: sorted(n.level for n in s.nodes if n.stage == i) for i in range(5)}
    assert levels == {0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 3], 2: [0, 1, 2], 3: [0, 1], 4: [0]}
    assert Node(1, 4) not in s.nodes and Node(2, 3) not in s.nodes
    assert s.output_node == Node(4, 0)


def test_eq1_inputs_of_each_node():
    s = Space(4)
    # stage 0 takes the lower levels of stage 0; later stages every level of the previous stage
    assert [c.source for c in s.incoming[Node(0, 3)]] == [Node(0, 0), Node(0, 1), Node(0, 2)]
    assert [c.source for c in s.incoming[Node(2, 1)]] == [Node(1, k) for k in range(4)]
    # the decoder SBB climbs one level; the other inputs are transforms T
    kinds = {c.source.level: c.kind for c in s.incoming[Node(2, 1)]}
    assert kinds == {0: TRANSFORM, 1: TRANSFORM, 2: DECODER_SBB, 3: TRANSFORM}


def test_a_searchable_encoder_chain_gives_50_gates():
    s = Space(4, encoder_chain_constant=False)
    assert s.n_gates == 50 and not s.constant_connections


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return UXNetSupernet(1, 3, channels=2, depth=2)


def test_initial_alpha_gives_a_uniform_softmax(supernet):
    for alpha, n in ((supernet.alpha_normal, 7), (supernet.alpha_reduction, 3), (supernet.alpha_expansion, 2)):
        assert torch.equal(alpha.detach(), torch.ones_like(alpha))
        torch.testing.assert_close(torch.softmax(alpha, -1), torch.full_like(alpha, 1 / n))


def test_initial_gates_are_one_half_where_J_and_its_gradient_vanish(supernet):
    beta = supernet.beta.detach().clone().requires_grad_(True)
    gates = torch.sigmoid(beta)
    assert torch.equal(gates, torch.full_like(gates, 0.5))
    J = polarisation(gates)
    (grad,) = torch.autograd.grad(J, beta)
    assert float(J.detach()) == 0.0 and torch.equal(grad, torch.zeros_like(grad))
    assert set(supernet.arch_regularisers()) == {"polarisation"}


def test_J_is_at_most_zero_with_minimum_minus_a_quarter_at_zero_and_one():
    g = torch.linspace(0, 1, 101, dtype=torch.float64)
    values = torch.stack([polarisation(v.reshape(1)) for v in g])
    assert float(values.max()) == 0.0 and bool((values <= 0).all())
    assert float(values.min()) == -0.25
    assert set(g[values == -0.25].tolist()) == {0.0, 1.0}
    assert float(polarisation(torch.tensor([0.0, 1.0]))) == -0.25


@pytest.mark.parametrize("beta0", [-3.0, -0.5, -1e-3, 1e-3, 0.5, 3.0])
def test_the_gradient_of_J_pushes_beta_away_from_zero(beta0):
    """Gradient descent moves beta by -dJ/dbeta: outwards on each side of 0."""
    beta = torch.tensor([beta0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(polarisation(torch.sigmoid(beta)), beta)
    step = -float(grad)
    assert step != 0 and math.copysign(1, step) == math.copysign(1, beta0)


def test_forward_shape_and_parameter_split(supernet):
    x = torch.randn(1, 1, 8, 8, 8)
    assert supernet(x).shape == (1, 3, 8, 8, 8)
    arch = {id(p) for p in supernet.arch_parameters()}
    weights = {id(p) for p in supernet.weight_parameters()}
    assert not arch & weights and arch | weights == {id(p) for p in supernet.parameters()}
    assert supernet.beta.shape == (supernet.space.n_gates,)


def test_every_gate_and_op_weight_gets_a_gradient(supernet):
    supernet.zero_grad()
    supernet(torch.randn(1, 1, 8, 8, 8)).square().mean().backward()
    for p in supernet.arch_parameters():
        assert p.grad is not None and bool((p.grad != 0).any())


@pytest.mark.parametrize("depth,chain,patch", [(2, True, 16), (3, False, 16)])
def test_supernet_memory_is_exact(depth, chain, patch):
    torch.manual_seed(0)
    net = UXNetSupernet(2, 3, channels=2, depth=depth, encoder_chain_constant=chain)
    x = torch.randn(2, 2, patch, patch, patch)
    measured = saved_activation_bytes(lambda: net(x), exclude=net)
    assert supernet_activation_bytes(2, 3, 2, depth, [patch] * 3, 2, chain) == measured


def test_gate_statistics_describe_polarisation():
    stats = gate_statistics(torch.tensor([0.02, 0.5, 0.8, 0.97]), tau=0.75)
    assert stats["gate_min"] == pytest.approx(0.02) and stats["gate_max"] == pytest.approx(0.97)
    assert stats["gate_polarised"] == 0.5 and stats["gate_kept"] == 0.5
    hist = [stats[f"gate_hist_{i:02d}"] for i in range(HISTOGRAM_BINS)]
    assert hist == [0.25, 0, 0, 0, 0, 0.25, 0, 0, 0.25, 0.25]
    assert stats["polarisation_J"] == pytest.approx(-(0.48**2 + 0 + 0.3**2 + 0.47**2) / 4)


def test_on_step_reports_the_current_gates(supernet):
    with torch.no_grad():
        supernet.beta.fill_(4.0)
    try:
        metrics = supernet.on_step(0, "search")
        assert metrics["gate_kept"] == 1.0 and metrics["gate_polarised"] == 1.0
        assert metrics["gate_hist_09"] == 1.0
    finally:
        with torch.no_grad():
            supernet.beta.zero_()
