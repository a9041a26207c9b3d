"""Search and retraining of every method resume exactly: a run cancelled halfway through a
``CancelToken`` and resumed ends bitwise equal (on CPU) to an uninterrupted run: the same
genotype, checkpoints (weights, architecture parameters, optimisers, loaders, RNGs), trained
weights and per-step losses."""
from __future__ import annotations

import torch
from contract_runs import load_state, state_differences

from nasengine.training.checkpoint import stage_files


def assert_same_checkpoints(reference, resumed) -> None:
    ref_files = {p.name: p for p in stage_files(reference.checkpoint_dir)}
    new_files = {p.name: p for p in stage_files(resumed.checkpoint_dir)}
    assert ref_files, f"no checkpoint in {reference.checkpoint_dir}"
    assert set(new_files) == set(ref_files)
    for name, path in ref_files.items():
        differences = state_differences(load_state(path), load_state(new_files[name]))
        assert not differences, f"{name}: " + "; ".join(differences[:10])


def test_resumed_search_gives_the_same_genotype(method_name, contract_runs):
    reference = contract_runs.search(method_name)
    resumed = contract_runs.resumed_search(method_name)
    assert resumed.genotype == reference.genotype


def test_resumed_search_ends_with_the_same_state(method_name, contract_runs):
    assert_same_checkpoints(contract_runs.search(method_name),
                            contract_runs.resumed_search(method_name))


def test_resumed_search_repeats_no_step_and_loses_none(method_name, contract_runs):
    reference = contract_runs.search(method_name).step_series()
    assert reference, "the search emitted no step events"
    assert contract_runs.resumed_search(method_name).step_series() == reference


def test_resumed_retrain_ends_with_the_same_weights(method_name, contract_runs):
    reference = contract_runs.retrain(method_name)
    resumed = contract_runs.resumed_retrain(method_name)
    differences = state_differences(load_state(reference.out_dir / "weights.pt"),
                                    load_state(resumed.out_dir / "weights.pt"))
    assert not differences, "; ".join(differences[:10])
    assert_same_checkpoints(reference, resumed)


def test_resumed_retrain_repeats_no_step_and_loses_none(method_name, contract_runs):
    reference = contract_runs.retrain(method_name).step_series()
    assert reference, "the retraining emitted no step events"
    assert contract_runs.resumed_retrain(method_name).step_series() == reference


def test_state_comparison_sees_one_flipped_bit_and_ignores_only_the_event_numbering():
    """The comparer the resume tests rely on is bitwise, recursive and not vacuous."""
    state = {"network": {"w": torch.tensor([1.0, 2.0])}, "step": 3, "rng": [torch.arange(3)],
             "reporter_seq": 10}
    same = {"network": {"w": torch.tensor([1.0, 2.0])}, "step": 3, "rng": [torch.arange(3)],
            "reporter_seq": 11}
    assert state_differences(state, same) == []
    flipped = torch.tensor([1.0, 2.0])
    flipped.view(torch.int32)[1] ^= 1  # the lowest mantissa bit
    assert state_differences(state, {**same, "network": {"w": flipped}}) == \
        ["network.w: tensors differ"]
    assert state_differences(torch.tensor(0.0), torch.tensor(-0.0)) != []
    assert state_differences(state, {**same, "step": 4}) == ["step: 3 vs 4"]
    assert state_differences(state, {**same, "rng": [torch.arange(4)]}) != []
    assert state_differences(state, {"network": {}, "step": 3, "rng": []}) != []
