"""Algorithm 1 (topology-similarity based evolution) as an event-driven strategy.

The strategy never trains anything: a driver asks it for a candidate whenever a worker slot is
free (``propose``) and tells it each result as it arrives (``record``), in any order; this is
Algorithm 1's ``while HasIdleGPU()`` made asynchronous, NNI-style. Its whole state (clusters,
history, in-flight candidates, the initial queue, the RNG) is plain data (``state_dict``) that a
driver saves after every change, so a search resumes exactly, in one process or as short tasks.

Choices where the paper is unclear (METHOD-NOTES 1.5):

- initial samples per cluster: ``init_per_cluster`` (default 2, the text; Algorithm 1 shows 1);
- exploration: with probability ``explore`` (0.2) per scheduling decision a uniformly random
  cluster (among those with untrained members) replaces the top-ranked one;
- a running candidate counts as taken (never proposed twice); a cluster with nothing left to
  train falls back to the next-ranked one;
- a failed candidate takes its place in the budget (so the search always ends) but is never
  drawn for ranking.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["kmeans", "EvolutionSettings", "Proposal", "TopologyEvolution"]


def kmeans(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 300) -> np.ndarray:
    """Lloyd's k-means (k-means++ seeding, Euclidean) of ``points`` [N, D] into ``k`` clusters.

    Deterministic for a seed. Cluster ids are renumbered by their first member (cluster 0
    holds point 0), so they do not depend on the seeding order. Returns labels [N] (int64).
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        pick = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres.append(points[pick])
    centre = np.asarray(centres)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centre[None]) ** 2).sum(-1)
        new = d2.argmin(1)
        for c in range(k):  # an emptied cluster takes the point farthest from its centre
            if not (new == c).any():
                far = int(d2[np.arange(n), new].argmax())
                new[far] = c
        if (new == labels).all() and _ > 0:
            break
        labels = new
        centre = np.stack([points[labels == c].mean(0) for c in range(k)])
    order = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.asarray([order[int(v)] for v in labels], dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    """Algorithm 1's constants: ``clusters`` (k = 8), ``init_per_cluster`` (2),
    ``budget`` (l = 50 evaluated candidates), ``explore`` (0.2), ``seed``."""

    clusters: int = 8
    init_per_cluster: int = 2
    budget: int = 50
    explore: float = 0.2
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A candidate to train: index into the codes, its cluster and why it was chosen
    (``initial``, ``best`` (top-ranked cluster), ``explore`` (the 0.2 draw) or ``fallback``
    (no cluster could be ranked yet))."""

    index: int
    cluster: int
    reason: str


class TopologyEvolution:
    """Algorithm 1 over ``codes`` (the coarse space, e.g. ``space.enumerate_codes()``).

    Args:
        codes: topology codes (equal length); clustered once with ``kmeans``.
        settings: the constants (and the seed of clustering and sampling).
    """

    def __init__(self, codes: Sequence[Sequence[int]], settings: EvolutionSettings):
        self.codes = [tuple(int(v) for v in c) for c in codes]
        self.settings = settings
        if settings.clusters > len(self.codes):
            raise ValueError(f"clusters: {settings.clusters} clusters for {len(self.codes)} "
                             "topologies")
        self.labels = [int(v) for v in kmeans(np.asarray(self.codes), settings.clusters,
                                              seed=settings.seed)]
        self.members: list[list[int]] = [[] for _ in range(settings.clusters)]
        for index, label in enumerate(self.labels):
            self.members[label].append(index)
        self.rng = random.Random(settings.seed)
        self.history: list[dict[str, Any]] = []   # {"index", "cluster", "fitness", "reason"}
        self.in_flight: dict[int, dict[str, Any]] = {}  # index -> {"cluster", "reason"}
        self.initial: list[int] = []
        for members in self.members:
            self.initial += self.rng.sample(members, min(settings.init_per_cluster, len(members)))
        self.decisions = {"initial": 0, "best": 0, "explore": 0, "fallback": 0}

    # -- queries ----------------------------------------------------------------------------
    @property
    def evaluated(self) -> int:
        return len(self.history)

    def taken(self) -> set[int]:
        return {h["index"] for h in self.history} | set(self.in_flight)

    def can_propose(self) -> bool:
        """Budget left for one more submission and a topology left to train."""
        return (self.evaluated + len(self.in_flight) < self.settings.budget
                and len(self.taken()) < len(self.codes))

    @property
    def done(self) -> bool:
        """Nothing in flight and nothing more to propose."""
        return not self.in_flight and not self.can_propose()

    def best(self) -> dict[str, Any] | None:
        """The history entry with the highest fitness (first of equals), or None."""
        scored = [h for h in self.history if h["fitness"] is not None]
        return max(scored, key=lambda h: h["fitness"]) if scored else None

    def cluster_counts(self) -> list[int]:
        """Evaluations per cluster so far (Fig. 4's proportions are these over the total)."""
        counts = [0] * self.settings.clusters
        for h in self.history:
            counts[h["cluster"]] += 1
        return counts

    # -- Algorithm 1 ------------------------------------------------------------------------
    def _untrained(self, cluster: int, taken: set[int]) -> list[int]:
        return [i for i in self.members[cluster] if i not in taken]

    def _ranked_clusters(self) -> list[int]:
        """Clusters with a trained member, ranked by one random trained member's fitness
        (lines 11-14)."""
        drawn = []
        for cluster in range(self.settings.clusters):
            trained = [h["fitness"] for h in self.history
                       if h["cluster"] == cluster and h["fitness"] is not None]
            if trained:
                drawn.append((-self.rng.choice(trained), cluster))
        return [cluster for _, cluster in sorted(drawn)]

    def propose(self) -> Proposal | None:
        """The next candidate to train (marked in flight), or None when the budget is spent
        or the space exhausted."""
        if not self.can_propose():
            return None
        taken = self.taken()
        while self.initial:
            index = self.initial.pop(0)
            if index not in taken:
                return self._submit(index, "initial")
        ranked = self._ranked_clusters()
        open_clusters = [c for c in range(self.settings.clusters) if self._untrained(c, taken)]
        explore = self.rng.random() < self.settings.explore
        ranked_open = [c for c in ranked if c in open_clusters]
        if explore:
            cluster, reason = self.rng.choice(open_clusters), "explore"
        elif ranked_open:
            cluster, reason = ranked_open[0], "best"
        else:
            cluster, reason = self.rng.choice(open_clusters), "fallback"
        return self._submit(self.rng.choice(self._untrained(cluster, taken)), reason)

    def _submit(self, index: int, reason: str) -> Proposal:
        cluster = self.labels[index]
        self.in_flight[index] = {"cluster": cluster, "reason": reason}
        self.decisions[reason] += 1
        return Proposal(index=index, cluster=cluster, reason=reason)

    def record(self, index: int, fitness: float | None) -> bool:
        """A finished candidate (``fitness`` None: failed). Returns False, changing nothing,
        for a candidate not in flight (a duplicate completion is recorded once)."""
        flight = self.in_flight.pop(int(index), None)
        if flight is None:
            return False
        self.history.append({"index": int(index), "cluster": flight["cluster"],
                             "fitness": None if fitness is None else float(fitness),
                             "reason": flight["reason"]})
        return True

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain data (ints, floats, strings, lists, dicts): JSON- and ``torch.save``-able."""
        version, internal, gauss = self.rng.getstate()
        return {
            "settings": dataclasses.asdict(self.settings),
            "labels": list(self.labels),
            "history": [dict(h) for h in self.history],
            "in_flight": [{"index": i, **v} for i, v in self.in_flight.items()],
            "initial": list(self.initial),
            "decisions": dict(self.decisions),
            "rng": {"version": version, "state": list(internal), "gauss": gauss},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; refuses a state of other settings or another space."""
        if dict(state["settings"]) != dataclasses.asdict(self.settings):
            raise ValueError("the saved evolution state has other settings: "
                             f"{state['settings']} vs {dataclasses.asdict(self.settings)}")
        if [int(v) for v in state["labels"]] != self.labels:
            raise ValueError("the saved evolution state clusters another space")
        self.history = [dict(h) for h in state["history"]]
        self.in_flight = {int(e["index"]): {"cluster": int(e["cluster"]), "reason": e["reason"]}
                          for e in state["in_flight"]}
        self.initial = [int(v) for v in state["initial"]]
        self.decisions = {k: int(v) for k, v in state["decisions"].items()}
        rng = state["rng"]
        self.rng.setstate((int(rng["version"]), tuple(int(v) for v in rng["state"]),
                           rng["gauss"]))
