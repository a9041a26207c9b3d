"""canonical_hash: equal for documents that build the same network, different otherwise."""

import json
import random

import pytest
from genotype_docs import FIXTURE_NAMES, fixture

from nasengine.genotype import GenotypeError, canonical_hash


def _reordered(doc: dict, seed: int) -> dict:
    """The same document with every object's keys and the edge list in another order."""
    rng = random.Random(seed)

    def shuffle_keys(v):
        if isinstance(v, dict):
            items = list(v.items())
            rng.shuffle(items)
            return {k: shuffle_keys(x) for k, x in items}
        if isinstance(v, list):
            return [shuffle_keys(x) for x in v]
        return v

    out = shuffle_keys(json.loads(json.dumps(doc)))
    rng.shuffle(out["edges"])
    for cell in out.get("cells", []):
        rng.shuffle(cell["edges"])
    return out


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_hash_ignores_key_order_edge_order_and_bookkeeping(name):
    doc = fixture(name)
    h = canonical_hash(doc)
    assert len(h) == 64 and int(h, 16) >= 0
    assert canonical_hash(_reordered(doc, 1)) == h
    noisy = fixture(name)
    noisy["meta"] = {"anything": 1}
    noisy["derived"] = {"parameters": 1}
    noisy["method"] = "other"
    for n in noisy["nodes"]:
        n.pop("layer", None)
        n.pop("level", None)
        n["position"] = 99
    for e in noisy["edges"]:
        e.pop("role", None)
        e["selected"] = True
        e["op_weights"] = {"skip": 0.5}
        if "weight" not in e:
            e["weight"] = 0.123
    assert canonical_hash(noisy) == h


def test_v1_and_v2_of_one_network_hash_the_same():
    assert canonical_hash(fixture("lattice_v1")) == canonical_hash(fixture("lattice"))


def test_weights_are_ignored_except_on_weighted_sum_nodes():
    doc = fixture("lattice")
    h = canonical_hash(doc)
    doc["edges"][3]["weight"] = 0.001
    assert canonical_hash(doc) == h
    gated = fixture("gated")
    g = canonical_hash(gated)
    k = next(k for k, e in enumerate(gated["edges"]) if e["source"] == "a2" and e["target"] == "b2")
    gated["edges"][k]["weight"] = 0.61  # b2 is a weighted sum: the weight scales its output
    assert canonical_hash(gated) != g


def test_a_different_op_or_wiring_changes_the_hash():
    base = canonical_hash(fixture("ushape"))
    op = fixture("ushape")
    op["edges"][1]["op"] = "conv_3x3x3"
    node_op = fixture("ushape")
    node_op["nodes"][2]["op"]["name"] = "p3d_3x1x3"
    wiring = fixture("gated")
    k = next(k for k, e in enumerate(wiring["edges"]) if e["source"] == "b1" and e["target"] == "c1")
    wiring["edges"][k]["source"] = "a1"  # same level and channels: valid, another network
    cell_op = fixture("cells")
    cell_op["cells"][0]["edges"][3]["op"] = "p3d_3x3x1"
    hashes = {canonical_hash(op), canonical_hash(node_op), base}
    assert len(hashes) == 3
    assert canonical_hash(wiring) != canonical_hash(fixture("gated"))
    assert canonical_hash(cell_op) != canonical_hash(fixture("cells"))


def test_slot_order_counts_only_where_it_changes_the_network():
    cells = fixture("cells")
    swapped = fixture("cells")
    a, b = (k for k, e in enumerate(swapped["cells"][0]["edges"]) if e["target"] == "out")
    swapped["cells"][0]["edges"][a]["slot"], swapped["cells"][0]["edges"][b]["slot"] = 1, 0  # concat order
    assert canonical_hash(swapped) != canonical_hash(cells)
    lattice = fixture("lattice")
    into_h2 = [k for k, e in enumerate(lattice["edges"]) if e["target"] == "h2"]
    assert len(into_h2) == 2
    for slot, k in zip((1, 0), into_h2):  # a summing node: the order of its inputs does not matter
        lattice["edges"][k]["slot"] = slot
    assert canonical_hash(lattice) == canonical_hash(fixture("lattice"))


def test_gates_count_by_what_they_prune():
    doc = fixture("gated")
    h = canonical_hash(doc)
    same = fixture("gated")
    for e in same["edges"]:
        if "gate" in e:
            e["gate"] = 0.99 if e["gate"] >= 0.5 else 0.01  # prunes the same edges
    assert canonical_hash(same) == h
    explicit = fixture("gated")  # the pruned network written out without gates
    pruned = {k for k, e in enumerate(explicit["edges"]) if e.get("gate", 1) < 0.5}
    dead = {"a3", "b3"}
    explicit["edges"] = [e for k, e in enumerate(explicit["edges"]) if k not in pruned and not {e["source"], e["target"]} & dead]
    explicit["nodes"] = [n for n in explicit["nodes"] if n["id"] not in dead]
    del explicit["gates"]
    assert canonical_hash(explicit) == h
    lower = fixture("gated")
    lower["gates"]["threshold"] = 0.25  # keeps a2 -> b2's sibling a3 -> b2 (0.3) and so a3
    assert canonical_hash(lower) != h


def test_continuous_snapshots_have_no_hash():
    doc = fixture("lattice")
    doc["continuous"] = True
    with pytest.raises(GenotypeError) as err:
        canonical_hash(doc)
    assert err.value.path == "continuous"
