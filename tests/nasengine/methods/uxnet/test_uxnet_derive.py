"""Derivation on hand-made gate sets (sec. 2.2 rules: tau, then dead nodes to a fixed point;
argmax ops; a kept path when tau cuts them all) and the genotype documents: the shared
validator prunes what the derivation prunes, and the pruned network builds, costs and exports."""

import random

import pytest
import torch

from nasengine.genotype import build_network, derive_figures, resolve, validate
from nasengine.methods.uxnet.derive import derive, genotype_document, prune
from nasengine.methods.uxnet.memory import full_genotype
from nasengine.methods.uxnet.ops import EXPANSION_OPS, NORMAL_OPS, REDUCTION_OPS
from nasengine.methods.uxnet.space import Node, Space
from nasengine.methods.uxnet.supernet import UXNetSupernet
from nasengine.ops import saved_activation_bytes

TAU = 0.75
HIGH, LOW = 0.9, 0.1


def gates_with(space: Space, low: set[tuple[str, str]], default: float = HIGH) -> list[float]:
    """sigma(beta) per gate: ``LOW`` on the named (source, target) connections, else ``default``."""
    gates = [default] * space.n_gates
    for c in space.gated_connections:
        if (c.source.id, c.target.id) in low:
            gates[c.gate] = LOW
    return gates


def document(space: Space, gates, tau=TAU, **kwargs):
    uniform = lambda n, k: [[1.0 / n] * n] * k  # noqa: E731
    return genotype_document(space, gates=gates, tau=tau, normal_weights=uniform(7, space.n_sbb),
                             reduction_weights=uniform(3, space.n_encoder_sbb),
                             expansion_weights=uniform(2, space.n_decoder_sbb),
                             in_channels=1, out_channels=2, channels=2, **kwargs)


def live_ids(space, live):
    return sorted(n.id for n in live)


def shared_dead(doc):
    """Aggregation nodes the shared validator drops (SBB nodes left out)."""
    return sorted(n for n in resolve(doc).graph.dead_nodes if not n.startswith("sbb:"))


def test_all_gates_kept_keeps_everything():
    s = Space(3)
    kept, live = prune(s, [HIGH] * s.n_gates, TAU)
    assert len(kept) == len(s.connections) and len(live) == len(s.nodes)


def test_a_node_without_outgoing_connection_dies_with_its_connections():
    s = Space(2)
    # N(1,1) feeds only N(2,0) (through the decoder SBB): cut that and N(1,1) is dead
    gates = gates_with(s, {("n1_1", "n2_0")})
    kept, live = prune(s, gates, TAU)
    assert Node(1, 1) not in live
    assert not [k for k in kept if Node(1, 1) in (s.connections[k].source, s.connections[k].target)]
    assert len(kept) == len(s.connections) - 1 - len(s.incoming[Node(1, 1)])
    doc = document(s, gates)
    assert shared_dead(doc) == ["n1_1"] == doc["meta"]["dead_nodes"]


def test_a_node_without_input_dies():
    s = Space(2)
    gates = gates_with(s, {(f"n0_{k}", "n1_1") for k in range(3)})
    _, live = prune(s, gates, TAU)
    assert Node(1, 1) not in live and shared_dead(document(s, gates)) == ["n1_1"]


def test_chains_of_dead_nodes_are_removed_to_a_fixed_point():
    """N(2,1) loses its only output; then N(1,2), whose other output is cut, has none left;
    then N(0,3), whose outputs to N(1,0) and N(1,1) are cut, goes too, with its constant
    encoder connection N(0,2) -> N(0,3)."""
    s = Space(3)
    gates = gates_with(s, {("n2_1", "n3_0"), ("n1_2", "n2_0"), ("n0_3", "n1_0"), ("n0_3", "n1_1")})
    kept, live = prune(s, gates, TAU)
    assert {Node(2, 1), Node(1, 2), Node(0, 3)}.isdisjoint(live)
    assert len(live) == len(s.nodes) - 3
    chain = next(c for c in s.constant_connections if c.target == Node(0, 3))
    assert chain.index not in kept
    # a single pass would only find N(2, 1): the removal really iterates
    first_pass = {n for n in s.nodes if n != s.output_node
                  and not any(c.gated is False or gates[c.gate] >= TAU for c in s.connections if c.source == n)}
    assert first_pass == {Node(2, 1)}
    assert shared_dead(document(s, gates)) == ["n0_3", "n1_2", "n2_1"]


def test_every_path_cut_keeps_the_best_path_and_reports_it():
    s = Space(2)
    gates = [LOW] * s.n_gates
    for c in s.gated_connections:  # the best path: N(0,0) -> N(1,1) -> N(2,0)
        if (c.source.id, c.target.id) in {("n0_0", "n1_1"), ("n1_1", "n2_0")}:
            gates[c.gate] = 0.6
    d = derive(s, gates, TAU)
    assert d.fallback is not None and d.fallback["path"] == ["n0_0", "n1_1", "n2_0"]
    assert d.fallback["gates"] == [0.6, 0.6] and d.fallback["threshold"] == TAU
    assert live_ids(s, d.live) == ["n0_0", "n1_1", "n2_0"]
    doc = document(s, gates)
    validate(doc)  # the output stays reachable: the path's edges carry no gate
    assert doc["meta"]["gate_fallback"] == d.fallback
    forced = [e for e in doc["edges"] if "weight" in e and "gate" not in e]
    assert len(forced) == 2 and all(e["weight"] == 0.6 for e in forced)
    assert len(resolve(doc).graph.edges) == 1 + 1 + 2 + 1  # stem, the path (a T, then an SBB), head
    assert build_network(doc)(torch.randn(1, 1, 8, 8, 8)).shape == (1, 2, 8, 8, 8)


def test_no_fallback_when_a_path_survives():
    s = Space(2)
    assert derive(s, [HIGH] * s.n_gates, TAU).fallback is None


@pytest.mark.parametrize("seed", range(6))
def test_the_shared_validator_prunes_what_the_derivation_prunes(seed):
    s = Space(3, encoder_chain_constant=seed % 2 == 0)
    rng = random.Random(seed)
    gates = [rng.random() for _ in range(s.n_gates)]
    d = derive(s, gates, 0.6)
    doc = document(s, gates, tau=0.6)
    assert shared_dead(doc) == sorted(d.dead_nodes(s))
    assert len(resolve(doc).graph.nodes) >= 3


def test_higher_tau_keeps_a_subset():
    s = Space(3)
    rng = random.Random(1)
    gates = [rng.random() for _ in range(s.n_gates)]
    kept = [prune(s, gates, tau)[0] for tau in (0.6, 0.75, 0.9)]
    assert kept[0] >= kept[1] >= kept[2]


def test_ops_are_the_argmax_of_alpha():
    torch.manual_seed(0)
    net = UXNetSupernet(1, 2, channels=2, depth=2, tau=0.0)
    with torch.no_grad():
        net.alpha_normal[0, 4] = 2.0  # the first SBB (N(0,0) -> N(0,1)): two stacked 3x3x3
        net.alpha_reduction[0, 0] = 2.0  # max pooling
        net.alpha_expansion[:, 1] = 2.0  # trilinear everywhere
    doc = net.decode()
    first = next(e for e in doc["edges"] if e["source"] == "n0_0" and e["target"].startswith("sbb:n0_0-n0_1"))
    second = next(e for e in doc["edges"] if e["source"] == "sbb:n0_0-n0_1")
    assert first["op"] == NORMAL_OPS[4] and second["op"] == REDUCTION_OPS[0]
    assert {e["op"] for e in doc["edges"] if e.get("resample") == "up" and e["source"].startswith("sbb:")} \
        == {EXPANSION_OPS[1]}
    others = [e["op"] for e in doc["edges"] if e["target"].startswith("sbb:") and e["source"] != "n0_0"]
    assert set(others) == {NORMAL_OPS[0]}  # alpha still 1 everywhere: the first op on a tie


def test_document_carries_gates_threshold_stage_and_level():
    s = Space(2)
    rng = random.Random(3)
    gates = [round(0.5 + rng.random() / 2, 3) for _ in range(s.n_gates)]
    doc = validate(document(s, gates, tau=0.6))
    assert doc["kind"] == "graph" and doc["version"] == 2 and doc["gates"] == {"threshold": 0.6}
    gated = [e for e in doc["edges"] if "gate" in e]
    assert sorted(e["gate"] for e in gated) == sorted(gates)
    assert all(e["weight"] == e["gate"] for e in gated)
    for n in doc["nodes"]:
        if n["id"].startswith("n"):
            i, j = map(int, n["id"][1:].split("_"))
            assert (n["stage"], n["level"], n["channels"]) == (i, j, 2 * 2**j)


def test_snapshot_is_a_continuous_genotype_with_op_weights_and_selection():
    torch.manual_seed(0)
    net = UXNetSupernet(1, 2, channels=2, depth=2, tau=0.75)
    snap = validate(net.snapshot())
    assert snap["continuous"] is True
    sbb_edges = [e for e in snap["edges"] if "op_weights" in e]
    assert len(sbb_edges) == 2 * net.space.n_sbb
    assert all(abs(sum(e["op_weights"].values()) - 1) < 1e-5 for e in sbb_edges)
    assert {e["gate"] for e in snap["edges"] if "gate" in e} == {0.5}
    # all gates at 0.5 < tau: the snapshot shows the fallback path selected, the rest off
    assert sum(e["selected"] for e in snap["edges"] if "selected" in e) < len([e for e in snap["edges"] if "selected" in e])
    assert snap["meta"]["gate_fallback"] is not None


def test_pruned_network_builds_costs_and_exports(tmp_path):
    s = Space(3)
    gates = gates_with(s, {("n2_1", "n3_0"), ("n1_2", "n2_0"), ("n0_3", "n1_0"), ("n0_3", "n1_1"), ("n0_0", "n0_2")})
    doc = validate(document(s, gates))
    torch.manual_seed(0)
    net = build_network(doc)
    x = torch.randn(2, 1, 16, 16, 16)
    figures = derive_figures(doc, [16, 16, 16])
    assert figures["parameters"] == sum(p.numel() for p in net.parameters())
    measured = saved_activation_bytes(lambda: net.train()(x), exclude=net)
    assert figures["memory_bytes"] * 2 == measured
    full = derive_figures(full_genotype(1, 2, 2, 3), [16, 16, 16])
    assert figures["parameters"] < full["parameters"] and figures["memory_bytes"] < full["memory_bytes"]
    net.eval()
    with torch.no_grad():
        expected = net(x)
        program = torch.export.export(net, (x,))
        torch.testing.assert_close(program.module()(x), expected)
