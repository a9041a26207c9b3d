"""A run's files are its own: a folder no other run can have (even when the database reuses an
id), a first attempt that never resumes from files found there, a clear failure for a
checkpoint that cannot be read, and a migration that keeps existing runs' folders.

Regression: in a full test run a brand-new run found ``MEDIA_ROOT/runs/2/checkpoints/
checkpoint.pt`` left by an earlier test's run with the same (reused) id, resumed from it and
failed with "Internal error: Weights only load failed ... Unsupported operand".
"""
from __future__ import annotations

import datetime
import uuid
from datetime import timedelta

import pytest
import torch
from django.db import transaction
from django.utils import timezone
from test_runs_support import GB, TINY, WORKHORSE_METHOD, make_demo_dataset, make_run

from webapp.runs.models import Run, RunEvent

pytestmark = pytest.mark.django_db(transaction=True)


class _Rollback(Exception):
    pass


def _foreign_checkpoint(run: Run) -> None:
    """What another run (or another program) might have left: a pickle that the engine's
    ``weights_only`` loader refuses."""
    folder = run.out_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 3, "reporter_seq": 5, "when": datetime.timedelta(seconds=1)}, folder / "checkpoint.pt")
    (run.out_dir / "genotype.json").write_text("{}")


def _search_run(owner, dataset, **config) -> Run:
    from webapp.runs import services

    return services.run_create_search(actor=owner, dataset=dataset, method=WORKHORSE_METHOD, preset="tiny",
                                      config={**TINY, **config}, gpu_budget_bytes=8 * GB)


@pytest.fixture
def lab(make_user, make_project, tmp_path, monkeypatch):
    from webapp.runs import services

    monkeypatch.setattr(services, "_enqueue", lambda run: None)  # executed in this process below
    owner = make_user("owner")
    project = make_project(owner)
    return {"owner": owner, "project": project, "dataset": make_demo_dataset(project, owner, tmp_path)}


def test_runs_never_share_a_folder_even_when_the_database_reuses_an_id(lab):
    with pytest.raises(_Rollback), transaction.atomic():
        rolled_back = make_run(lab["project"], lab["dataset"])
        raise _Rollback
    later = make_run(lab["project"], lab["dataset"])
    assert later.out_dir != rolled_back.out_dir
    assert later.out_dir.name == str(later.storage_key) and later.storage_key != rolled_back.storage_key
    legacy = make_run(lab["project"], lab["dataset"])
    Run.objects.filter(pk=legacy.pk).update(storage_key=None)  # a run created before the key existed
    assert Run.objects.get(pk=legacy.pk).out_dir.name == str(legacy.pk)


def test_a_first_attempt_never_resumes_from_files_it_did_not_write(lab, caplog):
    from webapp.runs.runtime import run_execute

    run = _search_run(lab["owner"], lab["dataset"], validate_every=0)
    _foreign_checkpoint(run)
    with caplog.at_level("INFO", logger="webapp.runs.runtime"):
        assert run_execute(run_id=run.pk, worker="w@test") == "done"
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert "resuming" not in caplog.text and "did not write" in caplog.text
    started = RunEvent.objects.get(run=run, type="run_started")
    assert started.seq == 1 and started.payload["resumed_from_step"] is None
    assert run.genotype["format"] == "voxelsearch-genotype"


def test_a_resume_whose_checkpoints_are_all_unreadable_starts_afresh_with_one_clean_event_stream(lab):
    """The engine finds no readable checkpoint (``latest_reporter_seq`` is None), deletes them
    and starts the run again; the events of the attempt that wrote them are dropped once."""
    from webapp.runs.runtime import checkpoint_dir, run_execute

    run = _search_run(lab["owner"], lab["dataset"], validate_every=0)
    assert run_execute(run_id=run.pk, worker="w@test") == "done"  # writes the method's own checkpoints
    run = Run.objects.get(pk=run.pk)
    written = sorted(checkpoint_dir(run).glob("*.pt"))
    assert run.status == "succeeded" and written, run.error
    first_attempt = RunEvent.objects.filter(run=run).count()
    # Say its worker died before recording the end (stale claim) and its checkpoints got damaged.
    Run.objects.filter(pk=run.pk).update(status="running", finished_at=None, genotype=None, claim_token="dead",
                                         worker="dead@host", heartbeat_at=timezone.now() - timedelta(hours=1))
    for path in written:
        torch.save({"step": 3, "reporter_seq": 5, "when": datetime.timedelta(seconds=1)}, path)
    assert run_execute(run_id=run.pk, worker="w@test") == "done"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 2, run.error
    events = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "type"))
    assert [s for s, _ in events] == list(range(1, first_attempt + 1)), "events duplicated or lost"
    assert [t for _, t in events].count("run_started") == 1 and events[-1][1] == "finished"


def test_a_checkpoint_the_engine_cannot_load_is_reported_as_such_not_as_an_internal_error(tmp_path):
    from nasengine.training import checkpoint
    from webapp.runs.runtime import raised_by_checkpoint_load, unreadable_checkpoint_message

    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 3, "when": datetime.timedelta(seconds=1)}, path)
    try:
        checkpoint.load(path)
    except Exception as exc:  # noqa: BLE001 - whatever torch raises for a refused pickle
        refused = exc
    else:
        raise AssertionError("the engine loaded a checkpoint with a pickled object")
    try:
        raise RuntimeError("while restoring the supernet") from refused
    except RuntimeError as exc:
        wrapped = exc
    assert raised_by_checkpoint_load(refused) and raised_by_checkpoint_load(wrapped)
    assert not raised_by_checkpoint_load(ValueError("a bug elsewhere"))
    message = unreadable_checkpoint_message(refused)
    assert message.startswith("The run's checkpoint could not be read, so it cannot resume") and "Clone the run" in message


def test_a_later_attempt_without_a_checkpoint_restarts_and_drops_the_dead_attempts_events(lab):
    from webapp.runs.runtime import StartPoint, start_point

    run = _search_run(lab["owner"], lab["dataset"])
    run.attempts = 2
    assert start_point(run) == StartPoint(resume=False, restart=True)
    checkpoints = run.out_dir / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({"reporter_seq": 1}, checkpoints / "checkpoint.pt")
    # a checkpoint no ownership record vouches for is not loaded (issue 13.7): moved aside
    assert start_point(run) == StartPoint(resume=False, restart=True)
    assert not (checkpoints / "checkpoint.pt").exists()
    # one that an earlier attempt of this run recorded is resumed from
    from webapp.runs.runtime import CheckpointOwnership

    torch.save({"reporter_seq": 1}, checkpoints / "checkpoint.pt")
    run.attempts = 1
    CheckpointOwnership(run, "token")({"type": "checkpoint", "path": str(checkpoints / "checkpoint.pt"), "seq": 1})
    run.attempts = 2
    assert start_point(run) == StartPoint(resume=True, restart=False)
    run.attempts = 1  # the same files on a first attempt are someone else's: removed
    assert start_point(run) == StartPoint(resume=False, restart=False) and not run.out_dir.exists()


def test_the_migration_keeps_existing_runs_folders_and_gives_new_runs_their_own(lab):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("runs", "0002_run_requeued_at")], [("runs", "0003_run_storage_key_event_types")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldRun, OldEvent = old_apps.get_model("runs", "Run"), old_apps.get_model("runs", "RunEvent")
    common = dict(project_id=lab["project"].pk, dataset_id=lab["dataset"].pk, method=WORKHORSE_METHOD,
                  preset="tiny", gpu_budget_bytes=GB, status="succeeded", error="kept")
    old_runs = [OldRun.objects.create(name=f"old {i}", **common) for i in range(3)]
    OldEvent.objects.create(run_id=old_runs[0].pk, seq=1, type="step", time=1.0, payload={"step": 1})
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(after)
    finally:  # leave the schema as the other tests expect it
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    for old in old_runs:
        run = Run.objects.get(pk=old.pk)
        assert run.storage_key is None and run.out_dir.name == str(old.pk)  # its folder did not move
        assert (run.name, run.error, run.status) == (old.name, "kept", "succeeded")
    assert RunEvent.objects.get(run_id=old_runs[0].pk).payload == {"step": 1}
    new = make_run(lab["project"], lab["dataset"])
    assert isinstance(new.storage_key, uuid.UUID) and new.out_dir.name == str(new.storage_key)
    long_type = "c2fnas.candidate_training_finished_after_resume"  # longer than the old 32
    assert RunEvent.objects.create(run=new, seq=1, type=long_type, time=0.0, payload={}).type == long_type
