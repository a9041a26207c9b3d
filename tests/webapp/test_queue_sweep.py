"""The database is the truth for the queue (issue 14, item 4 / F6), against the real Redis.

* A launch while the broker is unreachable stays queued (it is not marked failed), and the
  sweep sends it once the broker answers.
* A job whose message was lost (the queue flushed, as a Redis restart without persistence
  does) is sent again by the sweep exactly once, however often the sweep runs.
* A job whose message waits in a queue, or is reserved by a worker, is not sent again.

Each test uses a broker key prefix of its own, so a session worker started by other tests
never takes these messages and the counts are exact.
"""
from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from webtesting import reset_broker_pools

from webapp.celery import app
from webapp.common import sweep
from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_upload

IMPORT_TASK = "webapp.datasets.tasks.import_dataset"


def _reset_pools():
    reset_broker_pools()


@pytest.fixture
def private_broker():
    """The test Redis with a key prefix of this test's own; yields (client, prefix)."""
    saved_url, saved_options = app.conf.broker_url, dict(app.conf.broker_transport_options or {})
    prefix = f"vssweep{secrets.token_hex(4)}:"
    app.conf.broker_transport_options = {**saved_options, "global_keyprefix": prefix}
    _reset_pools()
    client = redis.Redis.from_url(saved_url)
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        app.conf.broker_url, app.conf.broker_transport_options = saved_url, saved_options
        _reset_pools()


def _messages(client, prefix: str, queue: str = "default") -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in ``queue``."""
    found = []
    for raw in client.lrange(f"{prefix}{queue}", 0, -1):
        job = sweep._job_of(json.loads(raw))
        found.append((job.task_name, [job.job_id]) if job else ("?", []))
    return found


def _upload(project, user) -> Dataset:
    return dataset_upload(project=project, actor=user, files=[SimpleUploadedFile("a.nii.gz", b"not really nifti")], labels="1: a")


@pytest.mark.django_db
def test_a_launch_while_the_broker_is_down_stays_queued_and_the_sweep_sends_it(
    private_broker, make_user, make_project, django_capture_on_commit_callbacks, caplog,
):
    client, prefix = private_broker
    user = make_user()
    project = make_project(user)
    working_url = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
    _reset_pools()
    with django_capture_on_commit_callbacks(execute=True):
        dataset = _upload(project, user)
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.UPLOADED, dataset.problems  # not failed
    assert "stays queued" in caplog.text

    app.conf.broker_url = working_url  # the broker is back
    _reset_pools()
    assert sweep.sweep_queue(grace=timedelta(0)) == [sweep.Waiting(IMPORT_TASK, dataset.pk)]
    assert _messages(client, prefix) == [(IMPORT_TASK, [dataset.pk])]


@pytest.mark.django_db
def test_a_lost_job_is_sent_again_exactly_once(private_broker, make_user, make_project, django_capture_on_commit_callbacks):
    client, prefix = private_broker
    user = make_user()
    project = make_project(user)
    with django_capture_on_commit_callbacks(execute=True):
        lost = _upload(project, user)
        kept = _upload(project, user)
        done = _upload(project, user)
    Dataset.objects.filter(pk=done.pk).update(status=Dataset.Status.READY)
    assert sorted(_messages(client, prefix)) == sorted([(IMPORT_TASK, [d.pk]) for d in (lost, kept, done)])

    # Redis loses the queue (restart without persistence), then the worker-held message of
    # `kept` comes back as reserved by a worker (the unacked hash), as kombu keeps it.
    client.delete(f"{prefix}default")
    kept_message = {"headers": {"task": IMPORT_TASK, "id": "x"}, "properties": {"body_encoding": "base64"},
                    "body": __import__("base64").b64encode(json.dumps([[kept.pk], {}, {}]).encode()).decode()}
    client.hset(f"{prefix}unacked", "tag-1", json.dumps([kept_message, "", "default"]))

    assert sweep.sweep_queue() == []  # within the grace period: enqueue_on_commit may still send it
    assert sweep.sweep_queue(grace=timedelta(0)) == [sweep.Waiting(IMPORT_TASK, lost.pk)]
    for _ in range(3):  # idempotent: the message is in the queue now
        assert sweep.sweep_queue(grace=timedelta(0)) == []
    assert _messages(client, prefix) == [(IMPORT_TASK, [lost.pk])]


@pytest.mark.django_db
def test_the_sweep_finds_every_kind_of_waiting_job_and_only_those(private_broker, make_user, make_project, media_root):
    """Queued runs and predictions, uploaded datasets and long-stale imports are waiting; a
    running run (its worker holds it), a fresh import and finished jobs are not."""
    from test_runs_support import make_model, make_run

    from webapp.predictions.models import Prediction
    from webapp.runs.models import Run

    user = make_user()
    project = make_project(user)
    queued_run = make_run(project, None)
    running_run = make_run(project, None, status="running")
    model = make_model(project, None, media_root)
    prediction = Prediction.objects.create(project=project, model=model, input_name="x.nii.gz", input_path="x")
    finished = Prediction.objects.create(project=project, model=model, input_name="y.nii.gz", input_path="y", status="succeeded")
    with_import = []
    for status, age in (("uploaded", 0), ("importing", 0), ("importing", 2), ("ready", 2)):
        dataset = Dataset.objects.create(project=project, name=f"{status}-{age}", source="files", status=status)
        Dataset.objects.filter(pk=dataset.pk).update(status_changed_at=sweep.timezone.now() - timedelta(hours=age))
        with_import.append(dataset)
    Run.objects.update(status_changed_at=sweep.timezone.now() - timedelta(hours=1))
    Prediction.objects.update(status_changed_at=sweep.timezone.now() - timedelta(hours=1))

    waiting = {(job.task_name, job.job_id) for job in sweep.waiting_jobs(grace=timedelta(0))}
    assert waiting == {
        ("webapp.runs.tasks.run_search", queued_run.pk),
        ("webapp.predictions.tasks.run_prediction", prediction.pk),
        (IMPORT_TASK, with_import[0].pk),  # uploaded
        (IMPORT_TASK, with_import[2].pk),  # importing for two hours: its worker is gone
    }
    assert running_run.pk != queued_run.pk and finished.pk != prediction.pk


@pytest.mark.django_db(transaction=True)
def test_a_job_lost_in_an_outage_is_run_exactly_once_by_a_real_worker_after_the_sweep(
    celery_worker, make_user, make_project, django_capture_on_commit_callbacks, wait_for,
):
    """End to end: the launch during an outage leaves no message; the sweep task, run by the
    real worker as beat would have it, sends the import; the worker runs it once."""
    from webapp.common.tasks import sweep_queue

    user = make_user()
    project = make_project(user)
    working_url = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    _reset_pools()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            dataset = _upload(project, user)
    finally:
        app.conf.broker_url = working_url
        _reset_pools()
    Dataset.objects.filter(pk=dataset.pk).update(status_changed_at=sweep.timezone.now() - timedelta(minutes=5))
    sweep_queue.delay()  # what beat sends every 30 s
    wait_for(lambda: Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.INVALID, timeout=90)
    dataset.refresh_from_db()
    assert dataset.import_attempts == 1  # run once: the junk file is refused by the import itself
    assert sweep.sweep_queue(grace=timedelta(0)) == []  # nothing left waiting
