"""Celery tasks for evaluations (queue ``gpu``, see CELERY_TASK_ROUTES). Tasks take ids."""
from celery import shared_task

from . import services


@shared_task(name="webapp.evaluations.tasks.run_evaluation", acks_late=True, ignore_result=True)
def run_evaluation(evaluation_id: int) -> None:
    services.evaluation_run(evaluation_id=evaluation_id)


@shared_task(name="webapp.evaluations.tasks.assemble_ensemble", acks_late=True, ignore_result=True)
def assemble_ensemble(fold_set_id: int) -> None:
    services.ensemble_run(fold_set_id=fold_set_id)
