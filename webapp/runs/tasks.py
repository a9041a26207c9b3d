"""Celery tasks for runs (queue ``gpu``). Tasks take ids and call the worker runtime.

A C2FNAS search's ``run_search`` returns as soon as its distributed search is started
("delegated"); the candidate executor's tasks (``candidates``) then carry the run.
"""
import logging

from celery import shared_task

from . import candidates as _candidates  # noqa: F401  (registers the C2FNAS candidate tasks)
from . import runtime

log = logging.getLogger(__name__)


def _execute(task, run_id: int) -> str:
    result = runtime.run_execute(run_id=run_id, worker=task.request.hostname or "")
    if result == "busy":
        # Another worker holds the run with a fresh heartbeat: look again one stale period later,
        # so the run is taken over if that worker dies.
        task.apply_async(args=[run_id], countdown=runtime.stale_after().total_seconds() + 1)
    try:  # this worker is free now: rescue runs whose worker died meanwhile
        runtime.run_requeue_orphans(stale_only=True)
    except Exception:
        log.exception("Could not look for orphaned runs")
    return result


@shared_task(bind=True, name="webapp.runs.tasks.run_search", acks_late=True, ignore_result=True)
def run_search(self, run_id: int) -> str:
    return _execute(self, run_id)


@shared_task(bind=True, name="webapp.runs.tasks.run_retrain", acks_late=True, ignore_result=True)
def run_retrain(self, run_id: int) -> str:
    return _execute(self, run_id)


def task_for(kind: str):
    """The task that executes a run of ``kind`` (``Run.Kind``)."""
    return run_search if kind == "search" else run_retrain
