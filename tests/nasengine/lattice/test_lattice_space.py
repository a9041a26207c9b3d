"""The lattice search space: edges, feasibility sets, pattern numbering, level geometry.
(The paper's D = 4 counts and MONAI's tables are DiNTS references: tests/nasengine/methods/dints.)"""

import itertools

import numpy as np
import pytest

from nasengine.lattice.space import SearchSpace, get_space, level_channels, level_shape


@pytest.mark.parametrize("D", [2, 3, 4, 5])
def test_edges_connect_adjacent_levels_only(D):
    s = SearchSpace(D)
    assert s.E == 3 * D - 2 and s.M == 2**s.E - 1 and s.A == 2**D - 1
    pairs = [(e.source, e.target) for e in s.edges]
    expected = {(a, b) for a in range(D) for b in range(D) if abs(a - b) <= 1}
    assert set(pairs) == expected and len(pairs) == len(expected)
    for t in range(D):  # contiguous per target
        assert all(s.edges[e].target == t for e in s.edges_into(t))


def test_a_lattice_needs_two_levels():
    with pytest.raises(ValueError, match="at least 2"):
        SearchSpace(1)


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


def test_pattern_row_round_trip():
    s = get_space(3)
    for j in itertools.islice(range(s.M), 0, s.M, 7):
        assert s.pattern_row(s.cp[j]) == j
    with pytest.raises(ValueError):
        s.pattern_row([0] * s.E)


def test_level_geometry():
    assert level_channels(16, 4) == [32, 64, 128, 256]
    assert level_shape((96, 64, 32), 0) == (96, 64, 32)
    assert level_shape((96, 64, 32), 3) == (12, 8, 4)
