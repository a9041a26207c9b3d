"""Helpers for Celery tasks: tasks take ids and are sent only once the transaction commits.

The database is the truth for the queue (issue 14, item 4): a job is created ``queued`` (a
dataset ``uploaded``) in the database first, and the message to the broker only says "look at
job N". When the broker cannot be reached the job simply stays queued; the periodic sweep
(:mod:`webapp.common.sweep`, Celery beat) sends it once the broker answers again.
"""
import logging

from django.db import transaction

log = logging.getLogger(__name__)


def broker_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the broker could not be reached (refused, timed out, dropped),
    as opposed to a message that could not be built (a bug, which should be seen)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError  # redis is a requirement
    from redis.exceptions import TimeoutError as RedisTimeoutError
    return isinstance(exc, (OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError))


def enqueue_on_commit(task, *args, on_error=None) -> None:
    """Send ``task`` with ``args`` (ids) after the surrounding transaction commits (at once if
    none).

    When the broker is down the job is **not** failed: it stays queued in the database, the
    outage is logged, and the sweep sends it when the broker is back. ``on_error()`` runs only
    when the message itself could not be sent for another reason (e.g. it cannot be
    serialised), so the caller can mark its object failed rather than leave it waiting for a
    job that can never be sent.
    """

    def send():
        try:
            task.apply_async(args=args, retry=True, retry_policy={"max_retries": 2})
        except Exception as exc:
            if broker_unreachable(exc):
                log.warning("The broker is not reachable: %s%s stays queued; the queue sweep will send it (%s)",
                            task.name, args, exc)
                return
            log.exception("Could not queue %s%s", task.name, args)
            if on_error is not None:
                on_error()

    transaction.on_commit(send)


# --- periodic housekeeping (Celery beat: the schedule is in webapp/celery.py) ------------------
from celery import shared_task  # noqa: E402


@shared_task(name="webapp.common.tasks.sweep_queue", ignore_result=True)
def sweep_queue() -> int:
    """Send the jobs the database holds as waiting that no worker and no queue holds."""
    from .sweep import sweep_queue as sweep

    return len(sweep())


@shared_task(name="webapp.common.tasks.remove_expired_uploads", ignore_result=True)
def remove_expired_uploads() -> int:
    """Delete resumable uploads left unfinished past their expiry."""
    from .tus import remove_expired_uploads as remove

    return remove()
