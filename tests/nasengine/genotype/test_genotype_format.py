"""Genotype format: validation errors name the field, load/dump, builder, export, figures."""

import copy
import json

import pytest
import torch
from genotype_docs import small_doc

from nasengine.genotype import (
    GenotypeError,
    build_network,
    derive_figures,
    dump,
    dumps,
    load,
    loads,
    validate,
)
from nasengine.ops import saved_activation_bytes


def test_valid_doc_passes_and_round_trips(tmp_path):
    doc = small_doc()
    assert validate(doc) is doc
    dump(doc, tmp_path / "g.json")
    assert load(tmp_path / "g.json") == doc
    assert loads(dumps(doc)) == doc


def _broken(mutate):
    doc = small_doc()
    mutate(doc)
    return doc


def _set(path_fn, value):
    def m(doc):
        obj, key = path_fn(doc)
        obj[key] = value
    return m


BAD = {
    "wrong format": (_set(lambda d: (d, "format"), "other"), "format"),
    "wrong version": (_set(lambda d: (d, "version"), 3), "version"),
    "bool version": (_set(lambda d: (d, "version"), True), "version"),
    "unknown top field": (_set(lambda d: (d, "extra"), 1), "extra"),
    "unknown op": (_set(lambda d: (d["edges"][1], "op"), "conv_9x9x9"), "edges[1].op"),
    "dangling source": (_set(lambda d: (d["edges"][3], "source"), "nowhere"), "edges[3].source"),
    "dangling target": (_set(lambda d: (d["edges"][3], "target"), "nowhere"), "edges[3].target"),
    "bad resample": (_set(lambda d: (d["edges"][2], "resample"), "sideways"), "edges[2].resample"),
    "level mismatch": (_set(lambda d: (d["edges"][2], "resample"), "none"), "edges[2]"),
    "channel mismatch": (_set(lambda d: (d["nodes"][2], "channels"), 12), "edges[3]"),
    "negative level": (_set(lambda d: (d["nodes"][1], "level"), -1), "nodes[1].level"),
    "duplicate id": (_set(lambda d: (d["nodes"][2], "id"), "n0_1"), "nodes[2].id"),
    "bad kind": (_set(lambda d: (d["nodes"][2], "kind"), "hidden"), "nodes[2].kind"),
    "zero channels": (_set(lambda d: (d["nodes"][3], "channels"), 0), "nodes[3].channels"),
    "in channels": (_set(lambda d: (d, "in_channels"), 5), "nodes[0].channels"),
    "out channels": (_set(lambda d: (d, "out_channels"), 4), "nodes[6].channels"),
    "weight not number": (_set(lambda d: (d["edges"][1], "weight"), "high"), "edges[1].weight"),
    "op weight unknown op": (_set(lambda d: (d["edges"][2], "op_weights"), {"fancy": 1.0}), "edges[2].op_weights.fancy"),
    "bool channels": (_set(lambda d: (d["nodes"][3], "channels"), True), "nodes[3].channels"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_validation_errors_name_the_field(name):
    mutate, path = BAD[name]
    with pytest.raises(GenotypeError) as err:
        validate(_broken(mutate))
    assert err.value.path == path, str(err.value)
    assert str(err.value).startswith(path)


def test_node_without_output_edge():
    doc = small_doc()
    doc["nodes"].append({"id": "lost", "kind": "feature", "layer": 1, "level": 1, "channels": 8})
    doc["edges"].append({"source": "n0_1", "target": "lost", "op": "skip"})
    with pytest.raises(GenotypeError, match="no output edge") as err:
        validate(doc)
    assert err.value.path == "nodes[7]"


def test_node_without_input_edge():
    doc = small_doc()
    doc["nodes"].append({"id": "orphan", "kind": "feature", "layer": 1, "level": 1, "channels": 8})
    doc["edges"].append({"source": "orphan", "target": "n2_1", "op": "skip"})
    with pytest.raises(GenotypeError, match="no input edge"):
        validate(doc)


def test_cycle_is_rejected():
    doc = small_doc()
    doc["edges"].append({"source": "n2_1", "target": "n1_1", "op": "skip"})
    with pytest.raises(GenotypeError, match="cycle") as err:
        validate(doc)
    assert err.value.path == "edges"


def test_edges_into_input_or_out_of_output():
    doc = small_doc()
    doc["edges"].append({"source": "out", "target": "z", "op": "skip"})
    with pytest.raises(GenotypeError) as err:
        validate(doc)
    assert err.value.path == "edges[7].source"


def test_loading_never_evaluates_code(tmp_path):
    doc = small_doc()
    doc["edges"][1]["op"] = "__import__('os').system('touch pwned')"
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(GenotypeError, match="unknown op"):
        load(tmp_path / "g.json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        loads("{'python': 'dict'}")


def test_builder_shapes_and_node_sums():
    doc = small_doc()
    net = build_network(doc)
    x = torch.randn(2, 2, 16, 16, 16)
    assert net(x).shape == (2, 3, 16, 16, 16)
    # a node sums its incoming edges: make n2_1 = skip(n1_1) + skip(n1_1')
    d2 = copy.deepcopy(doc)
    d2["edges"][4] = {"source": "n1_1", "target": "n2_1", "op": "skip"}
    d2["edges"][2] = {"source": "n0_1", "target": "n1_2", "op": "skip"}  # now level 1 -> level 2 skip: invalid
    with pytest.raises(GenotypeError):
        build_network(d2)


def test_builder_sums_parallel_edges():
    doc = {
        "format": "voxelsearch-genotype", "version": 2, "method": "t", "in_channels": 3, "out_channels": 3,
        "nodes": [
            {"id": "in", "kind": "input", "layer": 0, "level": 0, "channels": 3},
            {"id": "out", "kind": "output", "layer": 1, "level": 0, "channels": 3},
        ],
        "edges": [{"source": "in", "target": "out", "op": "skip"}, {"source": "in", "target": "out", "op": "skip"}],
    }
    x = torch.randn(1, 3, 4, 4, 4)
    torch.testing.assert_close(build_network(doc)(x), 2 * x)


def test_builder_refuses_continuous_snapshots():
    doc = small_doc()
    doc["continuous"] = True
    with pytest.raises(GenotypeError) as err:
        build_network(doc)
    assert err.value.path == "continuous"


def test_built_network_exports():
    net = build_network(small_doc()).eval()
    x = torch.randn(2, 2, 16, 16, 16)
    ep = torch.export.export(net, (x,))
    torch.testing.assert_close(ep.module()(x), net(x), atol=1e-5, rtol=1e-5)


def test_derive_figures_match_the_built_network():
    doc = small_doc()
    fig = derive_figures(doc, (16, 16, 16))
    net = build_network(doc)
    assert fig["parameters"] == sum(p.numel() for p in net.parameters())
    x = torch.randn(2, 2, 16, 16, 16)
    measured = saved_activation_bytes(lambda: net(x), exclude=net) / 2
    assert fig["memory_bytes"] == pytest.approx(measured, rel=0.02)
    assert fig["flops"] > 0 and fig["patch_size"] == [16, 16, 16]
    with pytest.raises(GenotypeError, match="divisible"):
        derive_figures(doc, (10, 16, 16))


def test_json_schema_agrees_with_validate():
    import jsonschema  # a dev dependency of the project: a missing one must fail, not skip

    from nasengine.genotype import schema
    from nasengine.ops import OPS

    current = schema()  # read now: methods imported since this module register more ops
    doc = small_doc()
    jsonschema.validate(doc, current)
    bad = _broken(_set(lambda d: (d["edges"][1], "op"), "conv_9x9x9"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, current)
    assert set(current["$defs"]["op_name"]["enum"]) == set(OPS)
