"""Version 1 documents still load, and build exactly the network the version-1 builder built.

``tests/fixtures/genotypes/v1_build_reference.json`` was recorded with the version-1 builder
(commit f05e2b2): for ``lattice_v1.json`` (a DiNTS decode) and the small hand-written document,
the module names in order, every parameter's name, shape and sums after ``torch.manual_seed(0)``,
the output on a fixed input, and the derived figures at 16^3. Seeded initialisation and saved
bundles' state dicts depend on all of these.
"""

import json

import pytest
import torch
from genotype_docs import FIXTURES, fixture, small_doc

from nasengine.genotype import VERSION, build_network, derive_figures, dump, dumps, load, loads, validate

REFERENCE = json.loads((FIXTURES / "v1_build_reference.json").read_text(encoding="utf-8"))


def v1_docs() -> dict[str, dict]:
    small = small_doc()
    small["version"] = 1
    return {"lattice_v1": fixture("lattice_v1"), "small_doc": small}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_v1_document_builds_the_same_modules_parameters_and_outputs(name):
    doc, ref = v1_docs()[name], REFERENCE[name]
    assert doc["version"] == 1
    torch.manual_seed(0)
    net = build_network(doc)
    assert [n for n, _ in net.named_modules()] == ref["modules"]
    params = list(net.named_parameters())
    assert [(n, list(p.shape)) for n, p in params] == [(n, shape) for n, shape, _, _ in ref["parameters"]]
    for (n, p), (_, _, total, absolute) in zip(params, ref["parameters"]):
        assert float(p.detach().double().sum()) == pytest.approx(total, rel=1e-12, abs=1e-12), n
        assert float(p.detach().double().abs().sum()) == pytest.approx(absolute, rel=1e-12), n
    x = torch.linspace(-1, 1, 2 * doc["in_channels"] * 16**3).reshape(2, doc["in_channels"], 16, 16, 16)
    with torch.no_grad():
        y = net(x).double()
    assert float(y.sum()) == pytest.approx(ref["output_sum"], rel=1e-6, abs=1e-6)
    assert float(y.abs().sum()) == pytest.approx(ref["output_abs_sum"], rel=1e-6)
    assert derive_figures(doc, (16, 16, 16)) == ref["figures_16"]


def test_v1_loads_as_an_upgraded_copy_and_dumps_as_v2(tmp_path):
    doc = fixture("lattice_v1")
    upgraded = validate(doc)
    assert doc["version"] == 1, "validate must not change the caller's document"
    assert upgraded["version"] == VERSION == 2
    assert {k: v for k, v in upgraded.items() if k != "version"} == {k: v for k, v in doc.items() if k != "version"}
    assert load(FIXTURES / "lattice_v1.json")["version"] == 2
    dump(doc, tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text())["version"] == 2
    assert json.loads(dumps(doc))["version"] == 2
    assert loads(dumps(doc)) == upgraded


def test_v1_and_its_v2_fixture_build_the_same_state_dict():
    torch.manual_seed(0)
    a = build_network(fixture("lattice_v1")).state_dict()
    torch.manual_seed(0)
    b = build_network(fixture("lattice")).state_dict()
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
