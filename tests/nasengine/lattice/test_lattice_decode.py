"""Lattice discretisation (DiNTS eqs. 3-4): feasibility, optimality against brute force, any op
list. (Agreement with MONAI is a DiNTS reference: tests/nasengine/methods/dints.)"""

import itertools

import numpy as np
import pytest
import torch

from nasengine.genotype import build_network, validate
from nasengine.lattice.decode import best_chain, decode, log_eta_np
from nasengine.lattice.genotypes import discrete_genotype
from nasengine.lattice.space import get_space

#: A three-op list (as DAST's skip/conv/transformer), to show nothing assumes DiNTS's five ops.
THREE_OPS = ("skip", "conv_3x3x3", "p3d_1x3x3")


def _feasible(rows, s):
    return all(s.in_nodes[rows[i + 1]] == s.out_nodes[rows[i]] for i in range(len(rows) - 1))


def test_decode_is_always_feasible_property():
    rng = np.random.default_rng(1234)
    for seed in range(300):
        D = int(rng.integers(2, 5))
        L = int(rng.integers(1, 9))
        s = get_space(D)
        scale = float(rng.choice([0.01, 1.0, 3.0, 10.0]))
        b = rng.normal(scale=scale, size=(L, s.E)) + rng.normal(scale=2.0)
        a = rng.normal(size=(L, s.E, 3))
        dec = decode(b, a, s)
        assert _feasible(dec.patterns, s), seed
        # node view: every active node has an input edge (or is a stem) and an output edge
        for i in range(L + 1):
            for d in range(D):
                if not dec.nodes[i, d]:
                    continue
                outs = i == L or any(dec.edges[i, e.index] for e in s.edges if e.source == d)
                ins = i == 0 or any(dec.edges[i - 1, e.index] for e in s.edges if e.target == d)
                assert outs and ins, (seed, i, d)
        # an inactive node is never read
        for i in range(L):
            for e in s.edges:
                if dec.edges[i, e.index]:
                    assert dec.nodes[i, e.source] and dec.nodes[i + 1, e.target]
        if seed % 25 == 0:
            doc = discrete_genotype(dec, s, cell_ops=THREE_OPS, method="lattice-test", in_channels=1,
                                    out_channels=2, stem_filters=2, marginals=np.full((L, s.E), 0.5),
                                    alpha=np.full((L, s.E, 3), 1 / 3))
            validate(doc)


def _brute_force(le, s):
    L = le.shape[0]
    best, arg = -np.inf, None
    for rows in itertools.product(range(s.M), repeat=L):
        if _feasible(rows, s):
            v = sum(le[i, r] for i, r in enumerate(rows))
            if v > best:
                best, arg = v, rows
    return np.array(arg), best


@pytest.mark.parametrize("D,L,seed", [(2, 1, 0), (2, 2, 1), (2, 3, 2), (2, 3, 3), (3, 2, 4)])
def test_decode_is_optimal_vs_brute_force(D, L, seed):
    s = get_space(D)
    rng = np.random.default_rng(seed)
    le = log_eta_np(rng.normal(scale=2.0, size=(L, s.E)), s.cp)
    rows, score = best_chain(le, s)
    bf_rows, bf_score = _brute_force(le, s)
    assert score == pytest.approx(bf_score, abs=1e-12)
    assert score == pytest.approx(sum(le[i, r] for i, r in enumerate(rows)), abs=1e-12)
    assert _feasible(rows, s)


def test_decode_can_differ_from_per_layer_argmax():
    """The most probable pattern per layer is infeasible here; the decode must not take it."""
    s = get_space(2)
    L = 2
    b = np.full((L, s.E), -6.0)
    # layer 1: only edge 0->1 (down) on -> activates level 1 only; layer 2: only 0->0 on (reads level 0)
    down = next(e.index for e in s.edges if (e.source, e.target) == (0, 1))
    same0 = next(e.index for e in s.edges if (e.source, e.target) == (0, 0))
    b[0, down] = 6.0
    b[1, same0] = 6.0
    le = log_eta_np(b, s.cp)
    argmax_rows = le.argmax(1)
    assert not _feasible(argmax_rows, s)
    rows, _ = best_chain(le, s)
    assert _feasible(rows, s)


def test_decode_l12_d4_runs_fast_enough_to_call_often():
    s = get_space(4)
    rng = np.random.default_rng(0)
    dec = decode(rng.normal(size=(12, s.E)), rng.normal(size=(12, s.E, 5)), s)
    assert dec.edges.shape == (12, 10) and dec.nodes.shape == (13, 4)
    assert _feasible(dec.patterns, s)


def test_decoded_genotype_builds_and_runs():
    s = get_space(3)
    rng = np.random.default_rng(5)
    b, a = rng.normal(scale=2, size=(3, s.E)), rng.normal(size=(3, s.E, 3))
    dec = decode(b, a, s)
    doc = discrete_genotype(dec, s, cell_ops=THREE_OPS, method="lattice-test", in_channels=2, out_channels=3,
                            stem_filters=4, marginals=np.full((3, s.E), 0.5), alpha=np.full((3, s.E, 3), 1 / 3))
    validate(doc)
    net = build_network(doc)
    assert net(torch.randn(2, 2, 16, 16, 16)).shape == (2, 3, 16, 16, 16)
    cell_edges = [e for e in doc["edges"] if e["source"].startswith("n") and e["target"].startswith("n")]
    assert len(cell_edges) == int(dec.edges.sum())
    # each edge carries the argmax op of its own logits, named from the given list
    for i in range(3):
        for e in s.edges:
            if dec.edges[i, e.index]:
                edge = next(x for x in cell_edges if x["source"] == f"n{i}_{e.source + 1}" and x["target"] == f"n{i + 1}_{e.target + 1}")
                assert edge["op"] == THREE_OPS[int(np.argmax(a[i, e.index]))]
    assert doc["method"] == "lattice-test" and doc["meta"]["cell_ops"] == list(THREE_OPS)
