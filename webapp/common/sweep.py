"""The queue sweep: the database is the truth for the queue (issue 14, item 4).

A job's message can be lost: Redis restarted without persistence, or the broker was down when
the job was launched (``enqueue_on_commit`` then leaves it queued). Celery beat runs
:func:`sweep_queue` periodically; it finds every job that the database holds as waiting

* runs and predictions ``queued``,
* datasets ``uploaded``, and datasets ``importing`` for longer than ``STALE_IMPORT`` (a worker
  that was importing it died and its message went with Redis),

and sends a job again only when **no message for it is in the broker**: neither waiting in a
queue nor reserved by a worker (Redis' ``unacked`` hash, which also holds the delayed tasks
that a worker keeps in memory). So a job is never sent twice by the sweep, and a run of the
sweep that finds nothing to do sends nothing.

Choices:

* a job becomes eligible only ``grace`` seconds after its last status change, so the sweep does
  not race ``enqueue_on_commit`` sending a job that was just created;
* one sweep at a time (a Redis lock), so two beat processes never both send a job;
* the task that receives a re-sent job is idempotent anyway: a run's claim guard, and the
  import and prediction services leave a final job alone.
"""
from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

log = logging.getLogger(__name__)

#: Queues the sweep looks into (CELERY_TASK_QUEUES) and kombu's Redis priority sub-queues.
_PRIORITY_STEPS = (0, 3, 6, 9)
_PRIORITY_SEP = "\x06\x16"


def sweep_grace() -> timedelta:
    return timedelta(seconds=int(os.environ.get("VOXELSEARCH_QUEUE_SWEEP_GRACE_SECONDS", "60")))


@dataclass(frozen=True)
class Waiting:
    """A job the database holds as waiting: the task that runs it and its id."""

    task_name: str
    job_id: int


def waiting_jobs(*, grace: timedelta | None = None) -> list[Waiting]:
    """Every job that the database holds as waiting for a worker, older than ``grace``."""
    from webapp.datasets.models import Dataset
    from webapp.datasets.services import STALE_IMPORT
    from webapp.datasets.tasks import import_dataset
    from webapp.predictions.models import Prediction
    from webapp.predictions.tasks import run_prediction
    from webapp.runs.models import Run
    from webapp.runs.tasks import task_for

    now = timezone.now()
    before = now - (sweep_grace() if grace is None else grace)
    jobs: list[Waiting] = []
    for run_id, kind in Run.objects.filter(status=Run.Status.QUEUED, status_changed_at__lte=before).values_list("pk", "kind"):
        jobs.append(Waiting(task_for(kind).name, run_id))
    for prediction_id in Prediction.objects.filter(status=Prediction.Status.QUEUED, status_changed_at__lte=before).values_list("pk", flat=True):
        jobs.append(Waiting(run_prediction.name, prediction_id))
    uploaded = Dataset.objects.filter(status=Dataset.Status.UPLOADED, status_changed_at__lte=before)
    stale_import = Dataset.objects.filter(status=Dataset.Status.IMPORTING, status_changed_at__lte=now - STALE_IMPORT)
    for dataset_id in (uploaded | stale_import).values_list("pk", flat=True):
        jobs.append(Waiting(import_dataset.name, dataset_id))
    # Evaluations and complete fold sets whose ensemble was never assembled (webapp.evaluations).
    from webapp.evaluations.services import waiting_jobs as evaluation_jobs

    jobs += [Waiting(name, pk) for name, pk in evaluation_jobs(before)]
    return jobs


def _broker_redis():
    """A plain Redis client on the broker and the global key prefix kombu puts on its keys."""
    import redis

    from webapp.celery import app

    prefix = (app.conf.broker_transport_options or {}).get("global_keyprefix", "") or ""
    return redis.Redis.from_url(app.conf.broker_url, socket_connect_timeout=3, socket_timeout=10), prefix


def _job_of(message: dict) -> Waiting | None:
    """The (task, first argument) a kombu message carries, or None when it is not a job."""
    try:
        headers = message.get("headers") or {}
        task_name = headers.get("task")
        body = message.get("body")
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if task_name and args and isinstance(args[0], int):
            return Waiting(task_name, int(args[0]))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        pass
    return None


def broker_jobs() -> set[Waiting]:
    """The jobs that have a message in the broker: waiting in a queue or reserved by a worker."""
    client, prefix = _broker_redis()
    found: set[Waiting] = set()
    raw: list[bytes] = []
    for queue in [q.name for q in settings.CELERY_TASK_QUEUES]:
        for step in _PRIORITY_STEPS:
            key = f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{_PRIORITY_SEP}{step}"
            raw.extend(client.lrange(key, 0, -1))
    for value in client.hvals(f"{prefix}unacked"):
        try:
            raw.append(json.dumps(json.loads(value)[0]).encode())
        except (ValueError, TypeError, IndexError):
            continue
    for item in raw:
        try:
            job = _job_of(json.loads(item))
        except ValueError:
            continue
        if job is not None:
            found.add(job)
    return found


def sweep_queue(*, grace: timedelta | None = None) -> list[Waiting]:
    """Send every waiting job that has no message in the broker; returns what it sent."""
    from webapp.celery import app

    client, prefix = _broker_redis()
    lock = client.lock(f"{prefix}voxelsearch:queue-sweep", timeout=120, blocking=False)
    if not lock.acquire():
        log.info("Another queue sweep is running; this one does nothing")
        return []
    try:
        waiting = waiting_jobs(grace=grace)
        if not waiting:
            return []
        held = broker_jobs()
        sent = []
        for job in waiting:
            if job in held:
                continue
            app.send_task(job.task_name, args=[job.job_id])
            sent.append(job)
            log.info("Queue sweep: sent %s(%s), which the database holds as waiting and no worker holds",
                     job.task_name, job.job_id)
        return sent
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: nothing to release
            pass
