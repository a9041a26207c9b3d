"""DiNTS references on the shared lattice: the decode (eqs. 3-4) and the topology loss (eqs. 6-7)
agree with MONAI's DiNTS for the same logits. (Optimality against brute force and the hand cases
of every loss: tests/nasengine/lattice/.)"""

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch

from nasengine.lattice import losses
from nasengine.lattice.decode import decode
from nasengine.lattice.space import get_space
from nasengine.methods.dints import DINTS_CELL_OPS


def _cp(s):
    return torch.from_numpy(s.cp).double()


def _monai_decode(b, a, D):
    warnings.filterwarnings("ignore")
    from monai.networks.nets.dints import TopologySearch

    with contextlib.redirect_stdout(io.StringIO()):
        ms = TopologySearch(channel_mul=0.125, num_blocks=b.shape[0], num_depths=D)
    with torch.no_grad():
        ms.log_alpha_a.copy_(torch.from_numpy(b))
        ms.log_alpha_c.copy_(torch.from_numpy(a))
    return ms.decode()


@pytest.mark.parametrize("D,L,n", [(2, 5, 6), (3, 4, 6), (4, 2, 1)])  # MONAI's D=4 decode takes ~9 s
def test_decode_agrees_with_monai(D, L, n):
    """Same edge logits (MONAI's log_alpha_a: same edge order) and op logits (log_alpha_c)."""
    s = get_space(D)
    agree = 0
    for seed in range(n):
        rng = np.random.default_rng(100 + seed)
        b = rng.normal(scale=3.0, size=(L, s.E)).astype(np.float32)
        a = rng.normal(size=(L, s.E, len(DINTS_CELL_OPS))).astype(np.float32)
        node_a, code_a, code_c, _ = _monai_decode(b, a, D)
        ours = decode(b.astype(np.float64), a, s)
        np.testing.assert_array_equal(code_c, ours.ops)
        if np.array_equal(code_a, ours.edges) and np.array_equal(node_a, ours.nodes):
            agree += 1
    assert agree == n


def test_topology_loss_matches_monai():
    warnings.filterwarnings("ignore")
    from monai.networks.nets.dints import TopologySearch

    with contextlib.redirect_stdout(io.StringIO()):
        ms = TopologySearch(channel_mul=0.125, num_blocks=4, num_depths=3)
    s = get_space(3)
    b = torch.randn(4, s.E, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    eta = losses.log_eta(b, _cp(s)).exp()
    perm = [s.monai_child_to_pattern(c) for c in range(s.M)]
    monai = ms.get_topology_entropy(eta[:, perm])
    ours = losses.topology_loss(eta, torch.from_numpy(s.f_in_matrix).double(), torch.from_numpy(s.f_out_matrix).double())
    assert float(ours) == pytest.approx(float(monai), rel=1e-9)
