"""DiNTS references on the shared lattice: the paper's counts (10 / 1023 / 15 / 120) and
MONAI's edge order, child numbering and transfer matrix. (Generic lattice properties:
tests/nasengine/lattice/test_lattice_space.py.)"""

import contextlib
import io
import warnings

import numpy as np

from nasengine.lattice.space import get_space
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
