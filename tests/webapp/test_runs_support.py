"""Helpers for the run and model tests (no tests here): a discrete genotype, a ready demo
dataset, a registered model with a small fake bundle. Imported by test_runs_*.py,
test_mlmodels_*.py and test_web_permissions.py."""
from __future__ import annotations

import functools
import json
from pathlib import Path

#: The method the end-to-end web tests search with: the one place that names it. Tests of
#: behaviour every method shares run over the whole registry instead.
WORKHORSE_METHOD = "dints"
#: Overrides of the workhorse's ``tiny`` preset: a search of a few steps that still snapshots,
#: validates and checkpoints.
TINY = {"search_steps": 4, "warmup_steps": 1, "weight_only_steps": 1, "lr_milestones": [],
        "snapshot_every": 2, "validate_every": 3, "checkpoint_every": 2}
GB = 1_000_000_000


@functools.cache
def _genotype_json(in_channels: int = 1, out_channels: int = 3) -> str:
    from nasengine.methods import get_method

    method = get_method(WORKHORSE_METHOD)
    net = method.build_supernet(method.make_config("tiny", {}), in_channels, out_channels)
    return json.dumps(net.decode())


def tiny_genotype(in_channels: int = 1, out_channels: int = 3) -> dict:
    """A valid discrete genotype of the workhorse method's tiny search space."""
    return json.loads(_genotype_json(in_channels, out_channels))


def make_run(project, dataset, *, kind="search", status="queued", genotype=None, **fields):
    """A Run row without a job (for pages and permissions)."""
    from webapp.runs.models import Run

    run = Run.objects.create(project=project, dataset=dataset, kind=kind, method=WORKHORSE_METHOD, preset="tiny",
                             config={}, resolved_config={"patch_size": [32, 32, 32]}, gpu_budget_bytes=8 * GB,
                             estimate_bytes=GB, genotype=genotype, **fields)
    if status != "queued":
        run.transition("running")
        if status != "running":
            run.transition(status)
    return run


def make_model(project, dataset, media_root: Path, *, genotype=None):
    """A succeeded retraining run with a small fake bundle, registered as a model."""
    from webapp.mlmodels.services import register_model

    run = make_run(project, dataset, kind="retrain", status="succeeded", genotype=genotype or tiny_genotype())
    out = run.bundle_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle.json").write_text(json.dumps({
        "format": "voxelsearch-model", "version": 1, "method": WORKHORSE_METHOD,
        "labels": {"0": "background", "1": "a", "2": "b"}, "channel_names": ["image"],
        "validation": {"dice": {"a": 0.5, "b": 0.25}, "mean_dice": 0.375}, "exports": {"pt2": {"file": "network.pt2"}},
    }))
    (out / "genotype.json").write_text(json.dumps(run.genotype))
    (out / "weights.pt").write_bytes(b"weights")
    (out / "network.pt2").write_bytes(b"exported")
    (out / "checkpoints").mkdir(exist_ok=True)
    (out / "checkpoints" / "checkpoint.pt").write_bytes(b"not part of the bundle")
    return register_model(run)


def make_demo_dataset(project, owner, tmp_path: Path, *, n_cases: int = 4, shape=(32, 32, 32)):
    """A ready dataset imported (in this process) from the engine's synthetic demo data."""
    from nasengine.api import make_demo_data
    from webapp.datasets.services import dataset_import_folder

    folder = make_demo_data(tmp_path / "demo", n_cases=n_cases, shape=shape)
    dataset = dataset_import_folder(project=project, actor=owner, folder=folder, name="Demo", queue=False)
    assert dataset.status == "ready", dataset.problems
    return dataset
