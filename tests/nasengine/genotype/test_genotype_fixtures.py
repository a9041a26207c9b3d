"""The example architectures (tests/fixtures/genotypes) validate, build, train, export, and their
derived figures are the built network's: parameters exactly, memory against what autograd saves."""

import pytest
import torch
from genotype_docs import FIXTURE_NAMES, fixture

from nasengine.genotype import build_network, derive_figures, resolve, validate
from nasengine.ops import saved_activation_bytes

PATCH = (32, 32, 32)
BATCH = 2  # batch 1 would take the slab path of the head convs (a CPU speed-up that holds ~1% more)


@pytest.fixture(scope="module", params=FIXTURE_NAMES)
def built(request):
    """(name, document, network, input batch) for each fixture, built once per module."""
    doc = validate(fixture(request.param))
    torch.manual_seed(0)
    net = build_network(doc)
    x = torch.randn(BATCH, doc["in_channels"], *PATCH)
    return request.param, doc, net, x


def test_kind_hints(built):
    name, doc, _, _ = built
    assert doc["version"] == 2
    assert doc["kind"] == {"lattice": "lattice", "cells": "cells", "ushape": "ushape", "gated": "graph"}[name]


def test_forward_and_backward(built):
    _, doc, net, x = built
    net.train()
    y = net(x)
    assert y.shape == (BATCH, doc["out_channels"], *PATCH)
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    net.zero_grad(set_to_none=True)


def test_derived_memory_equals_saved_activation_bytes(built):
    _, doc, net, x = built
    net.train()
    measured = saved_activation_bytes(lambda: net(x), exclude=net) / BATCH
    fig = derive_figures(doc, PATCH)
    assert fig["memory_bytes"] == pytest.approx(measured, rel=0.01)
    assert fig["patch_size"] == list(PATCH) and fig["flops"] > 0


def test_derived_parameters_equal_the_built_modules(built):
    _, doc, net, _ = built
    assert derive_figures(doc, PATCH)["parameters"] == sum(p.numel() for p in net.parameters())


def test_exports_with_torch_export(built):
    _, _, net, x = built
    net.eval()
    ep = torch.export.export(net, (x,))
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), net(x), atol=1e-5, rtol=1e-5)
    net.train()


def test_cells_fixture_instantiates_each_cell_node():
    doc = fixture("cells")
    net = build_network(doc)
    assert len(net.cells) == 4 and not hasattr(net, "node_ops")
    # down cells: 6 edge modules each; up cells: 9; the macro graph: 11 edges
    assert [len(c.edge_ops) for c in net.cells] == [6, 6, 9, 9]
    assert len(net.edge_ops) == 11
    # a cell node's channels are the instance's C: c2 is a down cell at C = 16 (it outputs 2 x 16)
    assert net.cells[1].edge_ops[0][0].conv_1.in_channels == 16
    r = resolve(doc)
    assert [r.graph.nodes[c].level for c in ("c1", "c2", "c3", "c4")] == [2, 3, 2, 1]


def test_ushape_fixture_colours_nodes_and_wires_typed_inputs():
    doc = fixture("ushape")
    net = build_network(doc)
    assert [type(m).__name__ for m in net.node_ops] == ["ReLUConvNorm", "P3DReLUConvNorm", "ReLUConvNorm",
                                                        "P3DReLUConvNorm", "P3DReLUConvNorm", "ReLUConvNorm"]
    roles = {(e["source"], e["target"]): e.get("role") for e in doc["edges"]}
    assert roles[("s", "c2")] == "previous_previous"
    assert roles[("c3", "c5")] == "skip" and roles[("c2", "c6")] == "skip"
    assert all(e["op"] == "conv_1x1x1" for e in doc["edges"] if e.get("role"))


def test_gated_fixture_prunes_edges_and_dead_nodes():
    doc = fixture("gated")
    r = resolve(doc)
    low = {k for k, e in enumerate(doc["edges"]) if e.get("gate", 1.0) < doc["gates"]["threshold"]}
    dead_edges = {k for k, e in enumerate(doc["edges"]) if {e["source"], e["target"]} & {"a3", "b3"}}
    assert set(r.graph.pruned_edges) == low | dead_edges
    assert set(r.graph.dead_nodes) == {"a3", "b3"}
    net = build_network(doc)
    assert len(net.edge_ops) == len(doc["edges"]) - len(low | dead_edges)
    assert type(net.node_ops[0]).__name__ == "ConcatReLUConvNorm"
    assert net.node_ops[0].in_channels == (8, 16, 16)  # b1, b2 (up), c2 (up) in slot order


def test_exports_to_onnx(built, tmp_path):
    import onnxruntime

    from nasengine.inference.export import export_onnx

    name, _, net, x = built
    net.eval()
    export_onnx(net, x[:1], tmp_path / f"{name}.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x[:1].numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), net(x[:1]), atol=1e-4, rtol=1e-4)
    net.train()
