"""DAST's search space: DiNTS's 12 x 4 lattice with three ops (paper, sec. 3 and 4.1)."""

import torch

from nasengine.lattice.space import get_space
from nasengine.methods.dast import DAST_CELL_OPS, METHOD, TRANSFORMER
from nasengine.ops import get_op


def paper_supernet():
    config = METHOD.make_config("paper")
    with torch.device("meta"):  # the paper's supernet, shapes only
        return METHOD.build_supernet(config, 1, 3)


def test_three_ops_skip_conv_transformer_in_logit_order():
    assert DAST_CELL_OPS == ("skip", "conv_3x3x3", TRANSFORMER)
    assert get_op(TRANSFORMER).kind == "cell"


def test_paper_space_has_360_op_logits_120_topology_logits_1023_patterns():
    net = paper_supernet()
    assert net.op_logits.numel() == 360 and tuple(net.op_logits.shape) == (12, 10, 3)
    assert net.edge_logits.numel() == 120
    assert get_space(4).M == 1023 and net.space.M == 1023


def test_every_candidate_edge_holds_the_three_ops():
    net = paper_supernet()
    node = net.layers[0][1]
    assert [type(op).__name__ for op in node.ops[0]] == ["Identity", "ReLUConvNorm", "TransformerOp"]
    transformer = node.ops[0][2]
    assert (transformer.tokens, transformer.grid_voxels) == (512, 16**3)


def test_decoded_genotype_is_a_lattice_with_transformer_parameters():
    config = METHOD.make_config("tiny")
    torch.manual_seed(0)
    net = METHOD.build_supernet(config, 1, 3)
    with torch.no_grad():  # make every op logit prefer the transformer
        net.op_logits[..., 2] = 5.0
    doc = net.decode()
    assert doc["kind"] == "lattice" and doc["method"] == "dast"
    cell_edges = [e for e in doc["edges"] if e["source"].startswith("n") and e["target"].startswith("n")]
    assert cell_edges and all(e["op"] == TRANSFORMER for e in cell_edges)
    assert all(e["params"] == config.transformer_params() for e in cell_edges)
    assert len(doc["meta"]["transformer_edges"]) == len(cell_edges)
    assert doc["meta"]["cell_ops"] == list(DAST_CELL_OPS)
