"""The lattice package stands alone: a later lattice method (DAST) reuses it without importing
another method's package, and it names no method's op list."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nasengine.lattice as lattice
from nasengine.genotype import VERSION, validate
from nasengine.lattice.costs import all_edges_cell_bytes, fixed_bytes, op_cost_table
from nasengine.lattice.genotypes import DRAWING_KIND, continuous_genotype, discrete_genotype
from nasengine.lattice.space import get_space, level_channels, level_shape
from nasengine.ops import get_op

PACKAGE = Path(lattice.__file__).parent
REPO = PACKAGE.parents[1]


def _imports(path: Path):
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    package = "nasengine.lattice"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else []))
            else:
                yield node.module


def test_no_module_of_the_package_imports_a_method():
    offenders = [f"{p.name}: {m}" for p in sorted(PACKAGE.glob("*.py")) for m in _imports(p)
                 if m.startswith("nasengine.methods")]
    assert not offenders, offenders
    assert len(list(PACKAGE.glob("*.py"))) >= 6  # the checker saw the package


def test_the_resolver_sees_a_relative_method_import(tmp_path):
    """The check above would catch ``from ..methods.dints import x`` (guards the guard)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..methods.dints import x\nfrom .space import get_space\n")
    assert list(_imports(probe)) == ["nasengine.methods.dints", "nasengine.lattice.space"]


def test_importing_the_package_loads_no_method():
    code = ("import sys, nasengine.lattice, nasengine.lattice.supernet; "
            "print(sorted(m for m in sys.modules if m.startswith('nasengine.methods')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_module_names_dints_cell_ops():
    for path in PACKAGE.glob("*.py"):
        assert "DINTS_CELL_OPS" not in path.read_text(encoding="utf-8"), path.name


# ---- cost tables by op name --------------------------------------------------------------------
def test_op_cost_table_looks_each_op_up_by_name_at_its_edge_shape():
    s = get_space(3)
    ops = ("conv_3x3x3", "skip")  # any order: columns follow the list
    op_costs, edge_costs = op_cost_table(s, 4, (32, 32, 16), ops)
    assert op_costs.shape == (s.E, 2) and edge_costs.shape == (s.E,)
    ch = level_channels(4, 3)
    for e in s.edges:
        at_target = level_shape((32, 32, 16), e.target + 1)
        assert op_costs[e.index, 0] == get_op("conv_3x3x3").memory(ch[e.target], ch[e.target], at_target)
        assert op_costs[e.index, 1] == 0
        expected_resample = (0 if e.resample == "none" else
                             get_op(e.resample).memory(ch[e.source], ch[e.target], level_shape((32, 32, 16), e.source + 1)))
        assert edge_costs[e.index] == expected_resample


def test_unknown_op_names_fail_naming_the_op():
    with pytest.raises(KeyError, match="no_such_op"):
        op_cost_table(get_space(2), 2, (16, 16, 16), ("skip", "no_such_op"))


def test_fixed_and_cell_bytes():
    s = get_space(2)
    patch = (16, 16, 16)
    ch = level_channels(2, 2)
    expected = (get_op("stem").memory(1, ch[0], patch, factor=2) + get_op("stem").memory(1, ch[1], patch, factor=4)
                + get_op("head_up").memory(ch[1], ch[0], level_shape(patch, 2))
                + get_op("head_up").memory(ch[0], 2, level_shape(patch, 1)) + get_op("head_out").memory(2, 3, patch))
    assert fixed_bytes(s, 1, 3, 2, patch, range(2)) == expected
    op_costs = np.array([[0.0, 4.0]] * s.E)
    edge_costs = np.arange(s.E, dtype=float)
    assert all_edges_cell_bytes(op_costs, edge_costs, 3, "mean") == 3 * (edge_costs.sum() + 2.0 * s.E)
    assert all_edges_cell_bytes(op_costs, edge_costs, 3, "max") == 3 * (edge_costs.sum() + 4.0 * s.E)


# ---- genotype writers ----------------------------------------------------------------------------
def _dec(L=2, D=2, n_ops=2, seed=0):
    from nasengine.lattice.decode import decode

    s = get_space(D)
    rng = np.random.default_rng(seed)
    return s, decode(rng.normal(size=(L, s.E)), rng.normal(size=(L, s.E, n_ops)), s)


def test_writers_refuse_an_op_list_that_does_not_match_alpha():
    s, dec = _dec()
    with pytest.raises(ValueError, match="cell_ops"):
        discrete_genotype(dec, s, cell_ops=("skip", "conv_3x3x3", "p3d_3x3x1"), method="m", in_channels=1,
                          out_channels=2, stem_filters=2, marginals=np.ones((2, s.E)), alpha=np.ones((2, s.E, 2)))
    with pytest.raises(ValueError, match="cell_ops"):
        continuous_genotype(s, cell_ops=("skip",), method="m", in_channels=1, out_channels=2, stem_filters=2,
                            edge_probs=np.ones((2, s.E)) / 2, alpha=np.ones((2, s.E, 2)))


def test_writers_give_the_lattice_drawing_kind():
    s, dec = _dec()
    doc = discrete_genotype(dec, s, cell_ops=("skip", "conv_3x3x3"), method="m", in_channels=1, out_channels=2,
                            stem_filters=2, marginals=np.ones((2, s.E)), alpha=np.ones((2, s.E, 2)) / 2)
    snap = continuous_genotype(s, cell_ops=("skip", "conv_3x3x3"), method="m", in_channels=1, out_channels=2,
                               stem_filters=2, edge_probs=np.full((2, s.E), 0.5), alpha=np.ones((2, s.E, 2)) / 2)
    assert doc["kind"] == snap["kind"] == DRAWING_KIND == "lattice"
    assert doc["version"] == snap["version"] == VERSION
    validate(doc)
    validate(snap)
