"""One abstract job model (webapp.common.jobs.Job) for runs and predictions: the shared fields
keep their columns in each table, both move through the same status machine and stamp the
same times, and the migrations describe the models exactly."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from test_runs_support import make_model, make_run

from webapp.common.jobs import Job
from webapp.predictions.models import Prediction
from webapp.runs.models import IllegalTransition, Run

pytestmark = pytest.mark.django_db

SHARED = ["project", "error", "attempts", "created_by", "created_at", "started_at", "finished_at", "status_changed_at"]


def test_the_migrations_match_the_models():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)  # SystemExit(1) on changes
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize("model", [Run, Prediction])
def test_the_shared_fields_are_columns_of_each_jobs_own_table(model):
    assert issubclass(model, Job) and Job._meta.abstract
    columns = {f.name: f.column for f in model._meta.concrete_fields}
    for name in SHARED:
        assert model._meta.get_field(name).model is model  # a column of its own table, not a parent's
    assert columns["project"] == "project_id" and columns["created_by"] == "created_by_id"
    assert columns["status"] == "status" and model._meta.get_field("status").db_index
    assert model._meta.ordering == ["-created_at", "-id"]


@pytest.fixture
def world(make_user, make_project, media_root):
    from webapp.datasets.models import Dataset

    owner = make_user("owner")
    project = make_project(owner)
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    return {"owner": owner, "project": project, "dataset": dataset, "model": make_model(project, dataset, media_root)}


def test_runs_and_predictions_share_the_status_machine_and_its_stamps(world):
    project = world["project"]
    prediction = Prediction.objects.create(project=project, model=world["model"], input_name="a.nii.gz",
                                           input_path="predictions/x/input.nii.gz", created_by=world["owner"])
    run = make_run(project, world["dataset"])
    for job in (run, prediction):
        assert job.duration_seconds is None and job.started_at is None
        job.transition("running")
        first_start = job.started_at
        job.transition("failed", error="out of memory")
        saved = type(job).objects.get(pk=job.pk)
        assert saved.started_at == first_start and saved.finished_at >= first_start
        assert saved.error == "out of memory" and saved.is_final and saved.duration_seconds >= 0
    assert set(project.runs.all()) >= {run} and list(project.predictions.all()) == [prediction]
    with pytest.raises(IllegalTransition):  # a prediction has no cancel (its own TRANSITIONS)
        Prediction.objects.create(project=project, model=world["model"], input_name="b", input_path="p").transition("cancelled")
