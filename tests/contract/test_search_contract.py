"""The tiny preset of every method searches on the demo data and yields a valid genotype,
with a well-formed event stream on the way."""
from __future__ import annotations

import json

from nasengine import api
from nasengine.events.sinks import read_events
from nasengine.genotype import GenotypeError, load, validate


def test_tiny_search_yields_a_valid_discrete_genotype(method_name, contract_runs):
    run = contract_runs.search(method_name)
    genotype = validate(run.genotype)
    assert genotype["method"] == method_name
    assert not genotype.get("continuous", False)
    plan = json.loads((run.out_dir / "plan.json").read_text())
    assert genotype["in_channels"] == len(plan["channel_names"])
    assert genotype["out_channels"] == len(plan["label_ids"])
    assert load(run.out_dir / api.GENOTYPE_FILE) == genotype


def test_tiny_search_event_stream_is_numbered_and_complete(method_name, contract_runs):
    events = read_events(contract_runs.search(method_name).out_dir / api.EVENTS_FILE)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "finished", types
    assert "failed" not in types and "cancelled" not in types
    assert "step" in types and "checkpoint" in types


def test_architecture_snapshots_are_valid_genotypes(method_name, contract_runs):
    """The dashboard draws every ``architecture`` event: each must be a genotype."""
    events = read_events(contract_runs.search(method_name).out_dir / api.EVENTS_FILE)
    snapshots = [e["genotype"] for e in events if e["type"] == "architecture"]
    assert snapshots, "a search must send at least one architecture snapshot"
    for i, snapshot in enumerate(snapshots):
        try:
            validate(snapshot)
        except GenotypeError as exc:
            raise AssertionError(f"architecture event {i}: {exc}") from None
        assert snapshot["method"] == method_name
