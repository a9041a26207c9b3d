"""Signal handlers: a worker that starts re-queues runs orphaned by a dead worker (Celery), and
a retraining run that asked for controls launches them once it has succeeded (Django)."""
import logging

from celery.signals import worker_ready
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Run

log = logging.getLogger(__name__)


@worker_ready.connect
def requeue_orphans_on_start(sender=None, **kwargs):
    try:
        from .runtime import run_requeue_orphans

        run_requeue_orphans()
    except Exception:  # never keep a worker from starting
        log.exception("Could not re-queue orphaned runs")


@receiver(post_save, sender=Run, dispatch_uid="runs-launch-requested-controls")
def launch_requested_controls(sender, instance: Run, update_fields=None, **kwargs):
    """When a retraining run with ``controls_requested`` reaches ``succeeded`` (its model was
    registered in the same transaction, by ``runtime.finish``), launch its two controls once
    that transaction commits. A failure to launch them is logged, never fails the run."""
    if not instance.controls_requested or instance.kind != Run.Kind.RETRAIN or instance.status != Run.Status.SUCCEEDED:
        return
    if update_fields is not None and "status" not in update_fields:
        return
    run_id = instance.pk

    def launch():
        from django.core.exceptions import ValidationError

        from .services import run_launch_requested_controls

        try:
            run_launch_requested_controls(run_id)
        except ValidationError as error:
            log.warning("Run %s: its controls were not launched: %s", run_id, " ".join(error.messages))
        except Exception:
            log.exception("Run %s: its controls could not be launched", run_id)

    transaction.on_commit(launch)
