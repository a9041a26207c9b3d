"""The multi-resolution lattice shared by lattice methods (DiNTS, DAST), op-list agnostic.

Modules: ``space`` (edges, connection patterns, feasibility sets, level channels), ``losses``
(eqs. 2, 5-10 as tensor functions), ``decode`` (eqs. 3-4, exact dynamic programme),
``genotypes`` (lattice genotype writers, given the method's op names), ``costs`` (memory cost
tables from the op registry, given op names), ``supernet`` (the searchable network over any
registered op list, with a hook for a fused mixed node). Nothing here imports a method package.
"""

from .costs import all_edges_cell_bytes, fixed_bytes, op_cost_table, plain_supernet_activation_bytes
from .decode import Decoded, best_chain, decode, log_eta_np
from .genotypes import DRAWING_KIND, continuous_genotype, discrete_genotype, node_id
from .space import Edge, SearchSpace, get_space, level_channels, level_shape
from .supernet import LatticeSupernet, MixedLatticeNode

__all__ = [
    "SearchSpace", "Edge", "get_space", "level_channels", "level_shape",
    "Decoded", "decode", "best_chain", "log_eta_np",
    "discrete_genotype", "continuous_genotype", "node_id", "DRAWING_KIND",
    "op_cost_table", "fixed_bytes", "all_edges_cell_bytes", "plain_supernet_activation_bytes",
    "LatticeSupernet", "MixedLatticeNode",
]
