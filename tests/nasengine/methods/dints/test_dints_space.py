"""DiNTS search space: the paper's counts, edge order, feasibility sets."""

import contextlib
import io
import itertools
import warnings

import numpy as np
import pytest

from nasengine.methods.dints.space import SearchSpace, get_space
from nasengine.methods.dints.model_search import DiNTSSupernet


def _monai_space(num_blocks, num_depths):
    warnings.filterwarnings("ignore")
    from monai.networks.nets.dints import TopologySearch

    with contextlib.redirect_stdout(io.StringIO()):
        return TopologySearch(channel_mul=0.125, num_blocks=num_blocks, num_depths=num_depths)


def test_paper_counts_d4():
    s = get_space(4)
    assert s.E == 10 == 3 * 4 - 2
    assert s.M == 1023 == 2**10 - 1
    assert s.A == 15 == 2**4 - 1
    assert s.cp.shape == (1023, 10)
    assert len({tuple(r) for r in s.cp}) == 1023 and s.cp.sum(1).min() == 1  # distinct, non-empty


def test_paper_topology_parameter_count_l12():
    net = DiNTSSupernet(1, 2, num_layers=12, num_depths=4, stem_filters=1)
    assert net.edge_logits.numel() == 120  # E x L instead of M x L = 12276
    assert tuple(net.op_logits.shape) == (12, 10, 5)
    assert net.N == 5


@pytest.mark.parametrize("D", [2, 3, 4, 5])
def test_edges_connect_adjacent_levels_only(D):
    s = SearchSpace(D)
    assert s.E == 3 * D - 2
    pairs = [(e.source, e.target) for e in s.edges]
    expected = {(a, b) for a in range(D) for b in range(D) if abs(a - b) <= 1}
    assert set(pairs) == expected and len(pairs) == len(expected)
    for t in range(D):  # contiguous per target
        assert all(s.edges[e].target == t for e in s.edges_into(t))


def test_edge_order_matches_monai():
    ms = _monai_space(2, 4)
    s = get_space(4)
    assert [e.source for e in s.edges] == ms.arch_code2in
    assert [e.target for e in s.edges] == ms.arch_code2out
    up_down = {"none": 0, "up": 1, "down": -1}
    assert [up_down[e.resample] for e in s.edges] == ms.arch_code2ops


def test_monai_child_index_mapping():
    ms = _monai_space(2, 3)
    s = get_space(3)
    for child, bits in enumerate(ms.child_list):
        j = s.monai_child_to_pattern(child)
        assert list(s.cp[j]) == list(bits)


@pytest.mark.parametrize("D", [2, 3, 4])
def test_feasibility_sets(D):
    s = get_space(D)
    levels_in = [{e.source for e in s.edges if s.cp[j, e.index]} for j in range(s.M)]
    levels_out = [{e.target for e in s.edges if s.cp[j, e.index]} for j in range(s.M)]
    as_set = lambda a: set(SearchSpace.levels(a))  # noqa: E731
    for a in range(1, s.A + 1):
        assert set(s.f_in(a)) == {j for j in range(s.M) if levels_out[j] == as_set(a)}
        assert set(s.f_out(a)) == {j for j in range(s.M) if levels_in[j] == as_set(a)}
    # F_in and F_out partition the patterns
    assert sum(len(s.f_in(a)) for a in range(1, s.A + 1)) == s.M
    assert sum(len(s.f_out(a)) for a in range(1, s.A + 1)) == s.M
    rng = np.random.default_rng(D)
    for j in rng.choice(s.M, size=min(s.M, 40), replace=False):
        fj = set(s.feasible_next(j))
        for k in range(s.M):
            # k may follow j iff every node j activates has an output edge in k and no other node does
            assert (k in fj) == (levels_in[k] == levels_out[j])


def test_feasible_sets_match_monai_transfer_matrix():
    """MONAI's sub-model adjacency (decode) and our F(j) agree for D = 3."""
    ms = _monai_space(2, 3)
    s = get_space(3)
    path2child = {str(ms.child_list[i]): i for i in range(len(ms.child_list))}
    for child in range(len(ms.child_list)):
        node_act = np.zeros(3, dtype=int)
        for p in range(len(ms.child_list[child])):
            node_act[ms.arch_code2out[p]] += ms.child_list[child][p]
        node_act = (node_act >= 1).astype(int)
        monai_next = {path2child[str(m.flatten()[ms.tidx].astype(int))] for m in ms.transfer_mtx[str(node_act)]}
        ours = {int(k) for k in s.feasible_next(s.monai_child_to_pattern(child))}
        assert {s.monai_child_to_pattern(c) for c in monai_next} == ours


def test_pattern_row_round_trip():
    s = get_space(3)
    for j in itertools.islice(range(s.M), 0, s.M, 7):
        assert s.pattern_row(s.cp[j]) == j
    with pytest.raises(ValueError):
        s.pattern_row([0] * s.E)
