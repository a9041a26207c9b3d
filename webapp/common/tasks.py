"""Helpers for Celery tasks: tasks take ids and are sent only once the transaction commits."""
from functools import partial

from django.db import transaction


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send ``task`` with ``args`` after the surrounding transaction commits (at once if none)."""
    transaction.on_commit(partial(task.apply_async, args=args, kwargs=kwargs))
