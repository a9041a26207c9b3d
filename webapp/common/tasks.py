"""Helpers for Celery tasks: tasks take ids and are sent only once the transaction commits."""
import logging

from django.db import transaction

log = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, on_error=None) -> None:
    """Send ``task`` with ``args`` (ids) after the surrounding transaction commits (at once if
    none). When the broker cannot be reached, ``on_error()`` runs so the caller can mark its
    object failed rather than leave it waiting for a job that never comes."""

    def send():
        try:
            task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2})
        except Exception:
            log.exception("Could not queue %s%s", task.name, args)
            if on_error is not None:
                on_error()

    transaction.on_commit(send)
