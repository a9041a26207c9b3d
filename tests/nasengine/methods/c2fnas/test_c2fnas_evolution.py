"""Algorithm 1 on a synthetic fitness (no training): k-means of the 924 codes, initial samples,
shares moving to the best cluster, the 0.2 exploration, asynchronous completions and exact
resume of the strategy state."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from nasengine.methods.c2fnas.evolution import EvolutionSettings, TopologyEvolution, kmeans
from nasengine.methods.c2fnas.space import enumerate_codes

CODES = enumerate_codes()
BEST_CLUSTER = 3


def cluster_fitness(strategy: TopologyEvolution, index: int) -> float:
    """Every topology of BEST_CLUSTER beats every other one (noise within clusters)."""
    noise = (index * 7919 % 1000) / 10_000
    return (1.0 if strategy.labels[index] == BEST_CLUSTER else 0.5) + noise


def run_async(strategy: TopologyEvolution, slots: int, seed: int = 0) -> list[int]:
    """Keep ``slots`` candidates in flight; complete them in a random order."""
    order = random.Random(seed)
    running: list[int] = []
    while not strategy.done:
        while len(running) < slots and (p := strategy.propose()) is not None:
            running.append(p.index)
        done = running.pop(order.randrange(len(running)))
        strategy.record(done, cluster_fitness(strategy, done))
    return [h["index"] for h in strategy.history]


def test_kmeans_of_the_924_codes_gives_8_nonempty_clusters_deterministically():
    labels = kmeans(np.asarray(CODES), 8, seed=0)
    assert labels.shape == (924,) and sorted(set(labels.tolist())) == list(range(8))
    assert (labels == kmeans(np.asarray(CODES), 8, seed=0)).all()
    assert labels[0] == 0
    # each code is nearer its own centre than any other (a Lloyd fixed point)
    points = np.asarray(CODES, dtype=float)
    centres = np.stack([points[labels == c].mean(0) for c in range(8)])
    nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == labels).all()


@pytest.mark.parametrize("per_cluster", [1, 2])
def test_initial_samples_per_cluster(per_cluster):
    s = TopologyEvolution(CODES, EvolutionSettings(init_per_cluster=per_cluster))
    first = [s.propose() for _ in range(8 * per_cluster)]
    assert all(p.reason == "initial" for p in first)
    per = np.bincount([p.cluster for p in first], minlength=8)
    assert per.tolist() == [per_cluster] * 8
    assert s.propose().reason != "initial"


def test_default_is_the_texts_two_initial_samples_and_the_papers_constants():
    assert EvolutionSettings() == EvolutionSettings(clusters=8, init_per_cluster=2, budget=50,
                                                    explore=0.2, seed=0)


def test_shares_move_to_the_best_cluster_and_exploration_shows():
    s = TopologyEvolution(CODES, EvolutionSettings(budget=120, seed=1))
    history = run_async(s, slots=4)
    assert len(history) == len(set(history)) == 120
    clusters = [s.labels[i] for i in history]
    early = np.bincount(clusters[:16], minlength=8) / 16
    late = np.bincount(clusters[-50:], minlength=8) / 50
    assert early[BEST_CLUSTER] == pytest.approx(1 / 8)
    assert late[BEST_CLUSTER] > 0.7
    # the 0.2 draw: about a fifth of the evolution decisions, and they reach other clusters
    evolved = 120 - 16
    explore = s.decisions["explore"]
    assert abs(explore - 0.2 * evolved) < 4 * (0.2 * 0.8 * evolved) ** 0.5
    others = sum(1 for h in s.history[16:] if h["cluster"] != BEST_CLUSTER)
    assert 0 < others <= explore
    assert s.labels[s.best()["index"]] == BEST_CLUSTER


def test_without_exploration_every_evolution_pick_is_the_top_cluster():
    s = TopologyEvolution(CODES, EvolutionSettings(budget=60, explore=0.0))
    run_async(s, slots=1)
    assert s.decisions["explore"] == 0
    assert all(h["cluster"] == BEST_CLUSTER for h in s.history[16:])


def test_budget_counts_in_flight_candidates_and_never_proposes_twice():
    s = TopologyEvolution(CODES, EvolutionSettings(budget=5))
    proposals = [s.propose() for _ in range(5)]
    assert s.propose() is None and not s.done
    assert len({p.index for p in proposals}) == 5
    assert s.record(proposals[0].index, None)          # a failure takes its budget place
    assert not s.record(proposals[0].index, 0.9)       # a duplicate completion is ignored
    for p in proposals[1:]:
        s.record(p.index, 0.1)
    assert s.done and s.evaluated == 5 and s.best()["fitness"] == 0.1


def test_resume_from_the_state_is_exact_mid_search():
    settings = EvolutionSettings(budget=40, seed=3)
    reference = TopologyEvolution(CODES, settings)
    reference_order = run_async(reference, slots=3, seed=5)

    first = TopologyEvolution(CODES, settings)
    order = random.Random(5)
    running: list[int] = []
    for _ in range(20):  # stop halfway, with candidates in flight
        while len(running) < 3 and (p := first.propose()) is not None:
            running.append(p.index)
        done = running.pop(order.randrange(len(running)))
        first.record(done, cluster_fitness(first, done))
    while len(running) < 3 and (p := first.propose()) is not None:
        running.append(p.index)
    state = json.loads(json.dumps(first.state_dict()))  # plain data survives JSON
    assert sorted(e["index"] for e in state["in_flight"]) == sorted(running)

    resumed = TopologyEvolution(CODES, settings)
    resumed.load_state_dict(state)
    while not resumed.done:
        while len(running) < 3 and (p := resumed.propose()) is not None:
            running.append(p.index)
        done = running.pop(order.randrange(len(running)))
        resumed.record(done, cluster_fitness(resumed, done))
    assert [h["index"] for h in resumed.history] == reference_order
    assert resumed.state_dict() == reference.state_dict()


def test_state_saves_with_torch_weights_only(tmp_path):
    s = TopologyEvolution(CODES, EvolutionSettings())
    s.propose()
    torch.save(s.state_dict(), tmp_path / "s.pt")
    assert torch.load(tmp_path / "s.pt", weights_only=True) == s.state_dict()


def test_state_of_other_settings_is_refused():
    state = TopologyEvolution(CODES, EvolutionSettings(seed=1)).state_dict()
    with pytest.raises(ValueError, match="other settings"):
        TopologyEvolution(CODES, EvolutionSettings(seed=2)).load_state_dict(state)
