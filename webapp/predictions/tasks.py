"""Celery tasks for predictions (queue ``gpu``, see CELERY_TASK_ROUTES). Tasks take ids."""
from celery import shared_task

from . import services


@shared_task(name="webapp.predictions.tasks.run_prediction", acks_late=True, ignore_result=True)
def run_prediction(prediction_id: int) -> None:
    services.prediction_run(prediction_id=prediction_id)
