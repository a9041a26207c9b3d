"""Celery application.

Two queues: ``gpu`` (search, retraining, prediction: one worker process per GPU, pool solo) and
``default`` (import and housekeeping). Tasks take database ids, call a service, and are enqueued
with ``transaction.on_commit`` (see ``webapp.common.tasks.enqueue_on_commit``).
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each worker reports its device and free memory when it starts, then every few seconds
# (webapp.common.workers: the launch checks estimates against them).
from webapp.common.workers import connect_signals  # noqa: E402

connect_signals()

# Periodic housekeeping, run by `celery -A webapp beat` (scripts/run-demo, docker/compose.yaml).
# Each message expires before the next is due, so a worker busy with a long search does not
# find a pile of them when it comes back.
_SWEEP_SECONDS = float(os.environ.get("VOXELSEARCH_QUEUE_SWEEP_SECONDS", "30"))
app.conf.beat_schedule = {
    # The database is the truth for the queue: re-send waiting jobs whose message was lost.
    "queue-sweep": {
        "task": "webapp.common.tasks.sweep_queue",
        "schedule": _SWEEP_SECONDS,
        "options": {"expires": max(_SWEEP_SECONDS - 1, 1)},
    },
    # Resumable uploads left unfinished past their expiry are deleted.
    "expired-uploads": {
        "task": "webapp.common.tasks.remove_expired_uploads",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
