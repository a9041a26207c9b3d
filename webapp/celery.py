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
