"""Every version-2 validation error is a GenotypeError whose path names the bad field, inside
cell types too (``cells[1].edges[3].op``)."""

import copy

import pytest
from genotype_docs import fixture

from nasengine.genotype import GenotypeError, validate


def _set(*keys_and_value):
    """A mutation that sets ``doc[k0][k1]...[kn] = value``."""
    *keys, value = keys_and_value

    def mutate(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        obj[keys[-1]] = value
    return mutate


def _delete(*keys):
    def mutate(doc):
        obj = doc
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]
    return mutate


# name: (fixture, mutation, expected path)
BAD = {
    # top level
    "bad kind": ("cells", _set("kind", "spiral"), "kind"),
    "cells not a list": ("cells", _set("cells", {}), "cells"),
    "gates not an object": ("gated", _set("gates", 0.5), "gates"),
    "gate threshold not a number": ("gated", _set("gates", "threshold", "half"), "gates.threshold"),
    "gates unknown field": ("gated", _set("gates", "mode", "hard"), "gates.mode"),
    "output unreachable after pruning": ("gated", _set("gates", "threshold", 0.99), "gates.threshold"),
    # cell types
    "unknown op inside a cell": ("cells", _set("cells", 1, "edges", 3, "op", "conv_9x9x9"), "cells[1].edges[3].op"),
    "cell type not an object": ("cells", _set("cells", 0, "down"), "cells[0]"),
    "cell type unknown field": ("cells", _set("cells", 0, "colour", "red"), "cells[0].colour"),
    "cell type without name": ("cells", _set("cells", 0, "name", ""), "cells[0].name"),
    "duplicate cell type": ("cells", _set("cells", 1, "name", "down"), "cells[1].name"),
    "cell inputs zero": ("cells", _set("cells", 0, "inputs", 0), "cells[0].inputs"),
    "cell inputs not matching input nodes": ("cells", _set("cells", 0, "inputs", 3), "cells[0].nodes"),
    "cell channel multiplier zero": ("cells", _set("cells", 0, "nodes", 2, "channels", 0), "cells[0].nodes[2].channels"),
    "cell output multiplier wrong": ("cells", _set("cells", 0, "channel_rule", "output_multiplier", 3), "cells[0].channel_rule.output_multiplier"),
    "cell channel rule unknown field": ("cells", _set("cells", 0, "channel_rule", "grow", 2), "cells[0].channel_rule.grow"),
    "cell concat channels": ("cells", _set("cells", 0, "nodes", 4, "channels", 3), "cells[0].nodes[4].channels"),
    "cell level mismatch": ("cells", _set("cells", 0, "edges", 3, "resample", "up"), "cells[0].edges[3]"),
    "cell in0 level not 0": ("cells", _set("cells", 0, "nodes", 0, "level", 1), "cells[0].nodes[0].level"),
    "nested cell": ("cells", _set("cells", 0, "nodes", 2, "cell", "up"), "cells[0].nodes[2].cell"),
    "gate inside a cell": ("cells", _set("cells", 0, "edges", 0, "gate", 0.3), "cells[0].edges[0].gate"),
    "dangling edge inside a cell": ("cells", _set("cells", 1, "edges", 2, "target", "zz"), "cells[1].edges[2].target"),
    "cycle inside a cell": ("cells", lambda d: d["cells"][0]["edges"].append({"source": "b", "target": "a", "op": "skip"}), "cells[0].edges"),
    # cell nodes
    "unknown cell type": ("cells", _set("nodes", 2, "cell", "sideways"), "nodes[2].cell"),
    "cell name not a string": ("cells", _set("nodes", 2, "cell", ["down"]), "nodes[2].cell"),
    "resample not a string": ("cells", _set("edges", 4, "resample", ["down"]), "edges[4].resample"),
    "combine not a string": ("ushape", _set("nodes", 2, "combine", ["sum"]), "nodes[2].combine"),
    "role not a string": ("ushape", _set("edges", 1, "role", {"a": 1}), "edges[1].role"),
    "kind not a string": ("ushape", _set("kind", ["ushape"]), "kind"),
    "cell node with an op": ("cells", _set("nodes", 2, "op", {"name": "conv_3x3x3"}), "nodes[2].op"),
    "cell node with a combine": ("cells", _set("nodes", 2, "combine", "sum"), "nodes[2].combine"),
    "cell node channels zero": ("cells", _set("nodes", 2, "channels", 0), "nodes[2].channels"),
    "cell output node width": ("cells", _set("out_channels", 4), "nodes[7].channels"),
    "cell node missing an input": ("cells", lambda d: d["edges"].pop(2), "nodes[2]"),
    "cell node level checked": ("cells", _set("nodes", 3, "level", 2), "edges[3]"),
    "duplicate slot": ("cells", _set("edges", 2, "slot", 0), "edges[2].slot"),
    "slot on some edges only": ("cells", _delete("edges", 2, "slot"), "edges[2].slot"),
    "negative slot": ("cells", _set("edges", 1, "slot", -1), "edges[1].slot"),
    "bool slot": ("cells", _set("edges", 1, "slot", True), "edges[1].slot"),
    "bad role": ("cells", _set("edges", 1, "role", "cousin"), "edges[1].role"),
    "pruned cell input": ("cells", lambda d: (d.__setitem__("gates", {"threshold": 0.5}), d["edges"][2].__setitem__("gate", 0.1)), "edges[2].gate"),
    # node ops
    "unknown node op": ("ushape", _set("nodes", 2, "op", "name", "conv_9x9x9"), "nodes[2].op.name"),
    "node op not an object": ("ushape", _set("nodes", 2, "op", "conv_3x3x3"), "nodes[2].op"),
    "node op unknown field": ("ushape", _set("nodes", 2, "op", "stride", 2), "nodes[2].op.stride"),
    "node op params not an object": ("ushape", _set("nodes", 2, "op", "params", [1]), "nodes[2].op.params"),
    "node op changes resolution": ("ushape", _set("nodes", 2, "op", "name", "down"), "nodes[2].op.name"),
    "input node with an op": ("ushape", _set("nodes", 0, "op", {"name": "conv_3x3x3"}), "nodes[0].op"),
    "bad combine": ("ushape", _set("nodes", 2, "combine", "max"), "nodes[2].combine"),
    "multi-input op without combine inputs": ("ushape", _set("nodes", 2, "op", "name", "concat_conv_1x1x1"), "nodes[2].op"),
    "combine inputs with a one-input op": ("ushape", _set("nodes", 2, "combine", "inputs"), "nodes[2].combine"),
    "multi-input op on an edge": ("ushape", _set("edges", 1, "op", "concat_conv_1x1x1"), "edges[1].op"),
    "explicit level wrong": ("ushape", _set("nodes", 3, "level", 2), "edges[2]"),
    "level of the input not 0": ("ushape", _set("nodes", 0, "level", 1), "nodes[0].level"),
    "stage not a number": ("gated", _set("nodes", 1, "stage", "first"), "nodes[1].stage"),
    "position not a number": ("ushape", _set("nodes", 1, "position", [0]), "nodes[1].position"),
    "active not a boolean": ("gated", _set("nodes", 1, "active", 1), "nodes[1].active"),
    "layer not an integer": ("ushape", _set("nodes", 1, "layer", 1.5), "nodes[1].layer"),
    # edges
    "gate not a number": ("gated", _set("edges", 2, "gate", "open"), "edges[2].gate"),
    "selected not a boolean": ("gated", _set("edges", 2, "selected", "yes"), "edges[2].selected"),
    "weighted sum edge without weight": ("gated", _delete("edges", 7, "weight"), "edges[7].weight"),
    "node op params not JSON": ("gated", _set("nodes", 9, "op", "params", {"x": float("nan")}), "nodes[9].op.params.x"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_v2_validation_errors_name_the_field(name):
    fixture_name, mutate, path = BAD[name]
    doc = fixture(fixture_name)
    validate(doc)  # the fixture itself is valid: the mutation is what breaks it
    mutate(doc)
    with pytest.raises(GenotypeError) as err:
        validate(doc)
    assert err.value.path == path, str(err.value)
    assert str(err.value).startswith(f"{path}: ")


def test_fixed_arity_multi_input_op_counts_its_inputs():
    from nasengine.ops import OPS, OpSpec, register_op, unregister_op

    spec = OPS["concat_conv_1x1x1"]
    pair = OpSpec("toy_concat_pair", "node", spec.build, spec.memory, spec.flops, arity=2)
    register_op(pair)
    try:
        doc = fixture("gated")
        doc["nodes"][9]["op"]["name"] = "toy_concat_pair"  # c1 has three live inputs
        with pytest.raises(GenotypeError, match="takes 2 inputs") as err:
            validate(doc)
        assert err.value.path == "nodes[9].op"
    finally:
        unregister_op("toy_concat_pair")



def _leaf_paths(v, prefix=()):
    """Every (path of keys) to a value inside ``v``."""
    yield prefix
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaf_paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _leaf_paths(x, prefix + (i,))


@pytest.mark.parametrize("name", ["cells", "ushape", "gated"])
def test_any_malformed_field_gives_a_genotype_error_never_another_exception(name):
    """Replace each field in turn by values of the wrong type: validate either accepts the
    document or raises GenotypeError (a TypeError or KeyError would be a validator bug)."""
    odd = [None, [], {}, "x", -1, 0, 1.5, True, ["x"], {"x": 1}]
    paths = [p for p in _leaf_paths(fixture(name)) if p]
    base = fixture(name)
    for path in paths:
        for value in odd:
            doc = copy.deepcopy(base)
            obj = doc
            for k in path[:-1]:
                obj = obj[k]
            obj[path[-1]] = value
            try:
                validate(doc)
            except GenotypeError as exc:
                assert exc.path and str(exc).startswith(exc.path)
