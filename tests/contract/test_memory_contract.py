"""Every method's memory estimate is within 10% of the bytes autograd really saves (measured
on CPU with saved-tensor hooks), for the supernet and for the retrained network.

What a method must expose for this (docs/PLUGIN-SURFACE.md, "Memory estimate contract"):

- ``estimate_memory(config, in, out).details["search_activation_bytes"]``: one forward of the
  supernet at the search batch and patch (``method.data_settings(config)``);
- ``details["retrain_activation_bytes"]``: one forward of the retrained network at
  ``details["retrain_batch_size"]`` (default: the search batch) and
  ``details["retrain_patch_size"]`` (default: the search patch);
- ``build_supernet(config, in, out)``: the supernet (or, for a method without one, the
  largest network its search trains), an ``nn.Module`` taking ``[B, in, *patch]``.

The retrained network measured is the one built from the tiny search's genotype.
"""
from __future__ import annotations

import pytest
import torch

from nasengine.genotype import derive_figures
from nasengine.methods import get_method
from nasengine.ops import saved_activation_bytes

TOLERANCE = 0.10


def tiny_estimate(method_name: str, contract_runs):
    method = get_method(method_name)
    config = method.make_config("tiny")
    genotype = contract_runs.search(method_name).genotype
    estimate = method.estimate_memory(config, genotype["in_channels"], genotype["out_channels"])
    return method, config, genotype, estimate


def measured_bytes(network: torch.nn.Module, in_channels: int, batch: int, patch) -> int:
    """Bytes autograd saves in one training-mode forward (parameters excluded)."""
    torch.manual_seed(0)
    network.train()
    x = torch.randn(int(batch), in_channels, *(int(s) for s in patch))
    return saved_activation_bytes(lambda: network(x), exclude=network)


def test_estimate_is_positive_and_names_its_parts(method_name, contract_runs):
    _, _, _, estimate = tiny_estimate(method_name, contract_runs)
    assert estimate.search_bytes > 0 and estimate.retrain_bytes > 0
    for key in ("search_activation_bytes", "retrain_activation_bytes"):
        assert isinstance(estimate.details.get(key), int) and estimate.details[key] > 0, key
    assert estimate.search_bytes >= estimate.details["search_activation_bytes"]
    assert estimate.retrain_bytes >= estimate.details["retrain_activation_bytes"]


def test_search_activation_estimate_matches_saved_tensors(method_name, contract_runs):
    method, config, genotype, estimate = tiny_estimate(method_name, contract_runs)
    settings = method.data_settings(config)
    supernet = method.build_supernet(config, genotype["in_channels"], genotype["out_channels"])
    measured = measured_bytes(supernet, genotype["in_channels"], settings.batch_size,
                              settings.patch_size)
    assert estimate.details["search_activation_bytes"] == pytest.approx(measured, rel=TOLERANCE)


def test_retrain_activation_estimate_matches_saved_tensors(method_name, contract_runs):
    method, config, genotype, estimate = tiny_estimate(method_name, contract_runs)
    settings = method.data_settings(config)
    batch = estimate.details.get("retrain_batch_size", settings.batch_size)
    patch = estimate.details.get("retrain_patch_size", settings.patch_size)
    network = method.build_network(genotype)
    measured = measured_bytes(network, genotype["in_channels"], batch, patch)
    assert estimate.details["retrain_activation_bytes"] == pytest.approx(measured,
                                                                         rel=TOLERANCE)


def test_derived_memory_figure_matches_saved_tensors(method_name, contract_runs):
    """``derive_figures(genotype, patch)["memory_bytes"]`` (per sample, shown with every
    architecture) is what the built network saves, within the same tolerance."""
    method, config, genotype, _ = tiny_estimate(method_name, contract_runs)
    patch = list(method.data_settings(config).patch_size)
    figures = derive_figures(genotype, patch)
    measured = measured_bytes(method.build_network(genotype), genotype["in_channels"], 2, patch)
    assert figures["memory_bytes"] == pytest.approx(measured / 2, rel=TOLERANCE)
