"""What each version-2 construct computes: merge rules, node ops, multi-input ops, cells, slots,
derived levels, gate pruning (values checked against the same modules applied by hand)."""

import dataclasses

import pytest
import torch

from nasengine.genotype import GenotypeError, build_network, resolve, validate


def doc_of(nodes, edges, *, in_channels=2, out_channels=None, **top):
    out = next(n for n in nodes if n["kind"] == "output")
    return {"format": "voxelsearch-genotype", "version": 2, "method": "t", "in_channels": in_channels,
            "out_channels": out_channels or out["channels"], "nodes": nodes, "edges": edges, **top}


X = torch.randn(2, 2, 4, 4, 4)


def test_concat_follows_slots_not_list_order():
    doc = doc_of(
        [{"id": "in", "kind": "input", "channels": 2}, {"id": "out", "kind": "output", "channels": 5, "combine": "concat"}],
        [{"source": "in", "target": "out", "op": "skip", "slot": 1},
         {"source": "in", "target": "out", "op": "conv_1x1x1", "slot": 0}],
    )
    with pytest.raises(GenotypeError) as err:  # a conv on a concat edge keeps its source's channels: 2 + 2
        validate(doc)
    assert err.value.path == "nodes[1].channels"
    doc["nodes"][1]["channels"] = doc["out_channels"] = 4
    net = build_network(doc)
    y = net(X)
    torch.testing.assert_close(y[:, :2], net.edge_ops[1](X))
    torch.testing.assert_close(y[:, 2:], X)


def test_weighted_sum_scales_each_edge_by_its_weight():
    doc = doc_of(
        [{"id": "in", "kind": "input", "channels": 2}, {"id": "out", "kind": "output", "channels": 2, "combine": "weighted_sum"}],
        [{"source": "in", "target": "out", "op": "skip", "weight": 0.25},
         {"source": "in", "target": "out", "op": "skip", "weight": 0.5}],
    )
    torch.testing.assert_close(build_network(doc)(X), 0.75 * X)
    sum_doc = doc_of(doc["nodes"][:1] + [{"id": "out", "kind": "output", "channels": 2}], doc["edges"])
    torch.testing.assert_close(build_network(sum_doc)(X), 2 * X)  # plain sum ignores the weights


def test_node_op_applies_to_the_merged_input():
    doc = doc_of(
        [{"id": "in", "kind": "input", "channels": 2},
         {"id": "out", "kind": "output", "channels": 3, "op": {"name": "conv_3x3x3"}}],
        [{"source": "in", "target": "out", "op": "conv_1x1x1"}, {"source": "in", "target": "out", "op": "conv_1x1x1"}],
    )
    net = build_network(doc)
    # sum: every edge brings the node's channels (3) and the op maps 3 -> 3
    assert net.edge_ops[0].conv.out_channels == 3 and net.node_ops[0].conv.in_channels == 3
    torch.testing.assert_close(net(X), net.node_ops[0](net.edge_ops[0](X) + net.edge_ops[1](X)))


def test_multi_input_node_op_gets_the_inputs_in_slot_order():
    doc = doc_of(
        [{"id": "in", "kind": "input", "channels": 2}, {"id": "a", "kind": "feature", "channels": 3},
         {"id": "out", "kind": "output", "channels": 4, "combine": "inputs", "op": {"name": "concat_conv_1x1x1"}}],
        [{"source": "in", "target": "a", "op": "conv_1x1x1"},
         {"source": "a", "target": "out", "op": "skip", "slot": 1},
         {"source": "in", "target": "out", "op": "skip", "slot": 0}],
    )
    net = build_network(doc)
    assert net.node_ops[0].in_channels == (2, 3)
    torch.testing.assert_close(net(X), net.node_ops[0]([X, net.edge_ops[0](X)]))


def test_cell_node_applies_its_cell_to_the_edges_in_slot_order():
    pair = {"name": "pair", "inputs": 2, "channel_rule": {"output_multiplier": 2}, "nodes": [
        {"id": "in0", "kind": "input", "channels": 1}, {"id": "in1", "kind": "input", "channels": 1},
        {"id": "a", "kind": "feature", "channels": 1},
        {"id": "out", "kind": "output", "channels": 2, "combine": "concat"}],
        "edges": [{"source": "in0", "target": "a", "op": "skip"}, {"source": "in1", "target": "a", "op": "conv_3x3x3"},
                  {"source": "in0", "target": "out", "op": "skip", "slot": 1},
                  {"source": "a", "target": "out", "op": "skip", "slot": 0}]}
    doc = doc_of(
        [{"id": "in", "kind": "input", "channels": 2}, {"id": "out", "kind": "output", "channels": 2, "cell": "pair"}],
        [{"source": "in", "target": "out", "op": "conv_1x1x1", "slot": 1},
         {"source": "in", "target": "out", "op": "skip", "slot": 0}],
        cells=[pair], out_channels=4,
    )
    net = build_network(doc)
    cell = net.cells[0]
    in0, in1 = X, net.edge_ops[0](X)  # slot 0 is the skip edge, slot 1 the 1x1x1 conv
    a = in0 + cell.edge_ops[1](in1)
    torch.testing.assert_close(net(X), torch.cat([a, in0], 1))
    assert cell.edge_ops[1].conv.in_channels == 2  # a cell node's channels are the instance's C
    assert net(X).shape[1] == 4  # and it outputs output_multiplier x C


def test_levels_are_derived_when_absent_and_checked_when_present():
    nodes = [{"id": "in", "kind": "input", "channels": 1}, {"id": "a", "kind": "feature", "channels": 4},
             {"id": "b", "kind": "feature", "channels": 8}, {"id": "c", "kind": "feature", "channels": 4},
             {"id": "out", "kind": "output", "channels": 2}]
    edges = [{"source": "in", "target": "a", "op": "stem", "resample": "down", "params": {"factor": 2}},
             {"source": "a", "target": "b", "op": "conv_3x3x3", "resample": "down"},
             {"source": "b", "target": "c", "op": "up", "resample": "up"},
             {"source": "a", "target": "c", "op": "skip"},
             {"source": "c", "target": "out", "op": "head_up", "resample": "up"}]
    r = resolve(doc_of(nodes, edges, in_channels=1))
    assert {nid: n.level for nid, n in r.graph.nodes.items()} == {"in": 0, "a": 1, "b": 2, "c": 1, "out": 0}
    nodes[2]["level"] = 2
    validate(doc_of(nodes, edges, in_channels=1))
    nodes[2]["level"] = 3
    with pytest.raises(GenotypeError, match="level mismatch") as err:
        validate(doc_of(nodes, edges, in_channels=1))
    assert err.value.path == "edges[1]"
    nodes[2]["level"] = 2
    edges[3]["resample"] = "down"  # a -> c would now put c at level 2, b -> c at level 1
    with pytest.raises(GenotypeError, match="level mismatch") as err:
        validate(doc_of(nodes, edges, in_channels=1))
    assert err.value.path == "edges[3]"


def test_gates_prune_edges_and_dead_nodes_and_the_builder_skips_them():
    nodes = [{"id": "in", "kind": "input", "channels": 2}, {"id": "a", "kind": "feature", "channels": 2},
             {"id": "out", "kind": "output", "channels": 2}]
    edges = [{"source": "in", "target": "a", "op": "conv_3x3x3", "gate": 0.2},
             {"source": "a", "target": "out", "op": "skip", "gate": 0.9},
             {"source": "in", "target": "out", "op": "skip", "gate": 0.6}]
    doc = doc_of(nodes, edges, gates={"threshold": 0.5})
    r = resolve(doc)
    assert r.graph.pruned_edges == (0, 1) and r.graph.dead_nodes == ("a",)
    net = build_network(doc)
    assert len(net.edge_ops) == 1
    torch.testing.assert_close(net(X), X)
    without = doc_of(nodes, edges)  # no threshold: gates are kept as data, nothing is pruned
    assert len(build_network(without).edge_ops) == 3
    with pytest.raises(GenotypeError, match="no longer reachable") as err:
        validate(doc_of(nodes, edges, gates={"threshold": 0.95}))
    assert err.value.path == "gates.threshold"


def test_pruning_an_input_of_a_cell_node_is_refused():
    one = {"name": "one", "inputs": 2, "nodes": [
        {"id": "in0", "kind": "input", "channels": 1}, {"id": "in1", "kind": "input", "channels": 1},
        {"id": "out", "kind": "output", "channels": 1}],
        "edges": [{"source": "in0", "target": "out", "op": "skip"}, {"source": "in1", "target": "out", "op": "skip"}]}
    doc = doc_of([{"id": "in", "kind": "input", "channels": 2}, {"id": "out", "kind": "output", "channels": 2, "cell": "one"}],
                 [{"source": "in", "target": "out", "op": "skip"}, {"source": "in", "target": "out", "op": "skip", "gate": 0.1}],
                 cells=[one], gates={"threshold": 0.5})
    with pytest.raises(GenotypeError, match="needs all of its inputs") as err:
        validate(doc)
    assert err.value.path == "edges[1].gate"
    del doc["gates"]
    torch.testing.assert_close(build_network(doc)(X), 2 * X)


class _LeakyConv(torch.nn.Module):
    """LeakyReLU -> 1x1x1 conv -> InstanceNorm: the LeakyReLU keeps its input tensor itself."""

    def __init__(self, c_in, c_out):
        super().__init__()
        from nasengine.ops.operations import InstanceNorm

        self.conv = torch.nn.Conv3d(c_in, c_out, 1, bias=False)
        self.norm = InstanceNorm(c_out)

    def forward(self, x):
        return self.norm(self.conv(torch.nn.functional.leaky_relu(x, 0.01)))


def _leaky_memory(c_in, c_out, spatial_shape, **_):
    s = int(torch.tensor(spatial_shape).prod())
    return 4 * (c_in * s + c_out * s + 2 * c_out)  # LeakyReLU out (the conv's input) + norm in; not x


def test_inputs_saved_by_several_ops_and_aliases_count_once():
    """Ops that keep their input (``saves_input``) share that storage: the figures count it once
    per tensor, following ``skip`` aliases and single-edge sums, into cells too."""
    from nasengine.genotype import derive_figures
    from nasengine.ops import OpSpec, register_op, saved_activation_bytes, unregister_op

    spec = OpSpec("toy_leaky_conv", "cell", lambda c_in, c_out, **_: _LeakyConv(c_in, c_out), _leaky_memory,
                  lambda *a, **k: 0, saves_input=True)
    register_op(spec)
    try:
        twin = {"name": "twin", "inputs": 1, "nodes": [
            {"id": "in0", "kind": "input", "channels": 1}, {"id": "a", "kind": "feature", "channels": 1},
            {"id": "out", "kind": "output", "channels": 1}],
            "edges": [{"source": "in0", "target": "a", "op": "toy_leaky_conv"},
                      {"source": "in0", "target": "out", "op": "toy_leaky_conv"},
                      {"source": "a", "target": "out", "op": "toy_leaky_conv"}]}
        nodes = [{"id": "in", "kind": "input", "channels": 2}, {"id": "a", "kind": "feature", "channels": 4},
                 {"id": "d", "kind": "feature", "channels": 4}, {"id": "b", "kind": "feature", "channels": 4},
                 {"id": "c", "kind": "feature", "channels": 4, "cell": "twin"},
                 {"id": "out", "kind": "output", "channels": 3, "op": {"name": "toy_leaky_conv"}}]
        edges = [{"source": "in", "target": "a", "op": "conv_3x3x3"},
                 {"source": "a", "target": "d", "op": "skip"},  # d is a itself
                 {"source": "a", "target": "b", "op": "toy_leaky_conv"},
                 {"source": "d", "target": "b", "op": "toy_leaky_conv"},  # saves a again: one storage
                 {"source": "d", "target": "c", "op": "skip"},  # the cell's in0 is a too
                 {"source": "b", "target": "out", "op": "toy_leaky_conv"},
                 {"source": "c", "target": "out", "op": "conv_1x1x1"}]
        doc = doc_of(nodes, edges, cells=[twin])
        net = build_network(doc)
        x = torch.randn(2, 2, 8, 8, 8)
        measured = saved_activation_bytes(lambda: net(x), exclude=net) / 2
        fig = derive_figures(doc, (8, 8, 8))
        assert fig["memory_bytes"] == measured
        # 7 ops save an input, but only 4 distinct tensors: a (= d = the cell's in0), b and the
        # cell's a with 4 channels, and out's merged input with 3 (a sum node's edges bring its channels)
        register_op(dataclasses.replace(spec, saves_input=False), replace=True)
        assert fig["memory_bytes"] - derive_figures(doc, (8, 8, 8))["memory_bytes"] == (3 * 4 + 3) * 8**3 * 4
    finally:
        unregister_op("toy_leaky_conv")
