"""A registered (retrained) model gets its test-split evaluation, queued once the
registration commits; the last fold of a fold set queues the ensemble."""
import logging

from django.db import transaction
from django.db.models.signals import post_save

log = logging.getLogger(__name__)


def evaluate_new_model(sender, instance, created, raw=False, **kwargs):
    if not created or raw:
        return
    model_id = instance.pk

    def create():
        from webapp.mlmodels.models import TrainedModel

        from .services import evaluation_create, fold_model_registered

        try:
            model = TrainedModel.objects.filter(pk=model_id).first()
            if model is not None:
                evaluation_create(model)
                fold_model_registered(model)  # the last fold of a fold set: make the ensemble
        except Exception:  # never undo or fail a registration that committed
            log.exception("Could not create the evaluation of model %s", model_id)

    transaction.on_commit(create)


def connect() -> None:
    from webapp.mlmodels.models import TrainedModel

    post_save.connect(evaluate_new_model, sender=TrainedModel, dispatch_uid="evaluations.evaluate_new_model")
