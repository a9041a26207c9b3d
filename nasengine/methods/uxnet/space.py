"""The UXNet search space (Fig. 3, eq. 1): aggregation nodes N(i, j) by stage i and level j and
the candidate connections between them.

Our reading of Fig. 3 (the paper gives the figure and eq. 1, no table), for depth D (the paper:
D = 4, levels 0..4, stages 0..4):

- stage 0 (the encoder) has levels 0..D; N(0, 0) is the stem's output. N(0, j) sums the lower
  levels k < j of stage 0 (eq. 1, i = 0). The connection from the level just below,
  N(0, j-1) -> N(0, j), is the encoder SBB (normal + reduction layer): the "Constant
  Connections" of the Fig. 3 legend, so it carries no gate by default
  (``encoder_chain_constant``). The other encoder connections (k < j-1) are searchable
  transforms T.
- stage i > 0 has levels 0..D-i: the lowest-resolution level is dropped at each later stage
  (N(1, 4), N(2, 3), ... are not there, sec. 2). N(i, j) sums every level k of stage i-1
  (eq. 1, i > 0); all of these are searchable. The connection from one level coarser,
  N(i-1, j+1) -> N(i, j), is the decoder SBB (normal + expansion layer), the way a U-Net
  decoder climbs one level per block; the others are transforms T (1x1x1 conv, pooled or
  upsampled to the target level).
- the prediction comes from the last stage's top level, N(D, 0).

Count at D = 4: 10 encoder connections (4 constant SBBs + 6 searchable skips) and
5*4 + 4*3 + 3*2 + 2*1 = 40 decoder connections: **46 searchable (gated) connections and 4
constant ones**; 50 gated when the encoder chain is searchable too. There are 4 encoder SBBs and
4 + 3 + 2 + 1 = 10 decoder SBBs, i.e. 14 normal layers, 4 reduction and 10 expansion layers.
Channels: C * 2^level at every node (Fig. 3(b): C0.5x / Cx / C2x across three levels).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

__all__ = ["Node", "Connection", "Space", "node_id", "ENCODER_SBB", "DECODER_SBB", "TRANSFORM"]

ENCODER_SBB, DECODER_SBB, TRANSFORM = "encoder_sbb", "decoder_sbb", "transform"


def node_id(stage: int, level: int) -> str:
    """Genotype id of N(stage, level)."""
    return f"n{stage}_{level}"


@dataclass(frozen=True)
class Node:
    """Aggregation node N(stage, level) with ``C * 2**level`` channels."""

    stage: int
    level: int

    @property
    def id(self) -> str:
        return node_id(self.stage, self.level)


@dataclass(frozen=True)
class Connection:
    """One candidate connection of eq. 1.

    Attributes:
        index: position in :attr:`Space.connections`.
        source, target: the nodes.
        kind: ``encoder_sbb`` (normal + reduction layer), ``decoder_sbb`` (normal + expansion
            layer) or ``transform`` (T: 1x1x1 conv with pooling / upsampling).
        gate: index into beta, or None for a constant connection.
        sbb: index of the SBB among the SBBs (normal layers), or None for a transform.
        second: index among the reduction SBBs (encoder) or the expansion SBBs (decoder).
    """

    index: int
    source: Node
    target: Node
    kind: str
    gate: int | None
    sbb: int | None = None
    second: int | None = None

    @property
    def shift(self) -> int:
        """Level change ``target.level - source.level`` (+ = coarser)."""
        return self.target.level - self.source.level

    @property
    def gated(self) -> bool:
        return self.gate is not None


class Space:
    """Nodes (in topological order) and connections of a UXNet supernet of ``depth`` levels."""

    def __init__(self, depth: int, encoder_chain_constant: bool = True):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = int(depth)
        self.encoder_chain_constant = bool(encoder_chain_constant)
        nodes = [Node(0, j) for j in range(depth + 1)]
        for i in range(1, depth + 1):
            nodes += [Node(i, j) for j in range(depth - i + 1)]
        self.nodes: tuple[Node, ...] = tuple(nodes)
        conns: list[Connection] = []
        counters = {"gate": 0, "sbb": 0, ENCODER_SBB: 0, DECODER_SBB: 0}

        def add(source: Node, target: Node, kind: str, gated: bool) -> None:
            gate = sbb = second = None
            if gated:
                gate, counters["gate"] = counters["gate"], counters["gate"] + 1
            if kind != TRANSFORM:
                sbb, counters["sbb"] = counters["sbb"], counters["sbb"] + 1
                second, counters[kind] = counters[kind], counters[kind] + 1
            conns.append(Connection(len(conns), source, target, kind, gate, sbb, second))

        for j in range(1, depth + 1):
            for k in range(j):
                chain = k == j - 1
                add(Node(0, k), Node(0, j), ENCODER_SBB if chain else TRANSFORM,
                    gated=not (chain and self.encoder_chain_constant))
        for i in range(1, depth + 1):
            for j in range(depth - i + 1):
                for k in range(depth - i + 2):
                    add(Node(i - 1, k), Node(i, j), DECODER_SBB if k == j + 1 else TRANSFORM, gated=True)
        self.connections: tuple[Connection, ...] = tuple(conns)
        self.n_gates = counters["gate"]
        self.n_sbb = counters["sbb"]
        self.n_encoder_sbb = counters[ENCODER_SBB]
        self.n_decoder_sbb = counters[DECODER_SBB]

    @property
    def input_node(self) -> Node:
        return Node(0, 0)

    @property
    def output_node(self) -> Node:
        """N(D, 0): the prediction is taken from here."""
        return Node(self.depth, 0)

    @cached_property
    def incoming(self) -> dict[Node, tuple[Connection, ...]]:
        """Connections into each node, in order of the source's stage and level."""
        out: dict[Node, list[Connection]] = {n: [] for n in self.nodes}
        for c in self.connections:
            out[c.target].append(c)
        return {n: tuple(v) for n, v in out.items()}

    @property
    def constant_connections(self) -> tuple[Connection, ...]:
        return tuple(c for c in self.connections if not c.gated)

    @property
    def gated_connections(self) -> tuple[Connection, ...]:
        return tuple(c for c in self.connections if c.gated)
