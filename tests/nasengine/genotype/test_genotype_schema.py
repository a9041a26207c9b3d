"""The genotype JSON Schema: op names from the live registry, every v2 field, fixtures conform."""

import jsonschema
import pytest
from genotype_docs import FIXTURE_NAMES, fixture, small_doc

import nasengine.genotype as genotype
from nasengine.genotype import schema, validate
from nasengine.ops import OPS, OpSpec, op_names, register_op, unregister_op


def test_op_enum_is_the_registry_at_call_time():
    assert schema()["$defs"]["op_name"]["enum"] == list(op_names())
    spec = OpSpec("toy_schema_op", "cell", OPS["skip"].build, OPS["skip"].memory, OPS["skip"].flops, same_channels=True)
    register_op(spec)
    try:
        assert "toy_schema_op" in schema()["$defs"]["op_name"]["enum"]
        doc = small_doc()
        doc["edges"][3]["op"] = "toy_schema_op"
        jsonschema.validate(doc, schema())
        validate(doc)
    finally:
        unregister_op("toy_schema_op")
    assert "toy_schema_op" not in schema()["$defs"]["op_name"]["enum"]


def test_schema_file_holds_no_hand_copy_of_the_op_names():
    import json
    from importlib import resources

    raw = json.loads(resources.files("nasengine.genotype").joinpath("schema.json").read_text())
    assert raw["$defs"]["op_name"]["enum"] == []


def test_schema_alias_and_fresh_copies():
    assert genotype.SCHEMA == schema()
    s = schema()
    s["$defs"]["op_name"]["enum"].clear()
    assert schema()["$defs"]["op_name"]["enum"]


@pytest.mark.parametrize("name", FIXTURE_NAMES + ("lattice_v1",))
def test_fixtures_conform_to_the_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(fixture(name), schema())


@pytest.mark.parametrize("where,value", [
    (("nodes", 2, "combine"), "max"),
    (("edges", 1, "role"), "cousin"),
    (("edges", 1, "slot"), -1),
    (("edges", 1, "op"), "conv_9x9x9"),
    (("cells", 0, "edges", 0, "op"), "conv_9x9x9"),
    (("cells", 0, "inputs"), 0),
    (("kind",), "spiral"),
])
def test_schema_rejects_bad_v2_fields(where, value):
    doc = fixture("cells")
    obj = doc
    for k in where[:-1]:
        obj = obj[k]
    obj[where[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema())


def test_schema_rejects_bad_node_ops_and_gates():
    doc = fixture("ushape")
    doc["nodes"][2]["op"]["name"] = "conv_9x9x9"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema())
    gated = fixture("gated")
    gated["gates"] = {"threshold": "half"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(gated, schema())
