"""Every registered method can give the "random" control of issue 12: an architecture drawn
from its own space that validates, builds and runs, and that depends on the seed."""
from __future__ import annotations

import torch

from nasengine.controls import random_architecture
from nasengine.genotype import canonical_hash, validate
from nasengine.inference.bundle import network_from_genotype
from nasengine.methods import get_method


def test_random_architecture_is_a_valid_network_of_the_method(method_name):
    method = get_method(method_name)
    doc = random_architecture(method_name, preset="tiny", seed=3, in_channels=1,
                              out_channels=3)
    assert validate(doc) == doc
    assert doc["method"] == method_name
    assert doc["meta"]["control"] == "random" and doc["meta"]["control_seed"] == 3
    assert doc["in_channels"] == 1 and doc["out_channels"] == 3
    network = network_from_genotype(doc).eval()
    edge = max(16, method.patch_divisor(doc))
    with torch.no_grad():
        logits = network(torch.randn(1, 1, edge, edge, edge))
    assert logits.shape == (1, 3, edge, edge, edge)
    # same seed, same architecture
    again = random_architecture(method_name, preset="tiny", seed=3, in_channels=1,
                                out_channels=3)
    assert canonical_hash(again) == canonical_hash(doc)


def test_random_architecture_varies_with_the_seed(method_name):
    hashes = {canonical_hash(random_architecture(method_name, preset="tiny", seed=s,
                                                 in_channels=1, out_channels=2))
              for s in range(6)}
    assert len(hashes) >= 2, "six seeds drew one architecture: the draw ignores the seed"
