"""Celery tasks for datasets (queue ``default``). Tasks take ids and call a service."""
from celery import shared_task

from . import services


@shared_task(name="webapp.datasets.tasks.import_dataset", acks_late=True, ignore_result=True)
def import_dataset(dataset_id: int) -> None:
    services.dataset_import(dataset_id=dataset_id)
