"""Celery signal handlers: a worker that starts re-queues runs orphaned by a dead worker."""
import logging

from celery.signals import worker_ready

log = logging.getLogger(__name__)


@worker_ready.connect
def requeue_orphans_on_start(sender=None, **kwargs):
    try:
        from .runtime import run_requeue_orphans

        run_requeue_orphans()
    except Exception:  # never keep a worker from starting
        log.exception("Could not re-queue orphaned runs")
