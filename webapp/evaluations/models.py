"""Test-split evaluations of registered models, and the controls trained beside a searched one."""
from django.conf import settings
from django.db import models

from webapp.common.jobs import Job, status_field


class Evaluation(Job):
    """The held-out test cases of a model, segmented through the prediction users get and
    scored in each input's own geometry (``nasengine.evaluation``); one per model.

    ``report`` is the engine's JSON report (cases, per-class summary, settings) plus
    ``model_figures`` (parameters, FLOPs). A model whose dataset has no labelled test case is
    ``skipped`` (``error`` says why); nothing is made up for it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "No test cases"

    #: queued -> running -> succeeded | failed | skipped; a queued evaluation may fail (never
    #: sent) directly. The three outcomes are final.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED}),
        Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.SKIPPED: frozenset(),
    }
    STATUS_NOUN = "evaluation"

    #: CASCADE: the evaluation describes the model; it goes with it.
    model = models.OneToOneField("mlmodels.TrainedModel", on_delete=models.CASCADE, related_name="evaluation")
    status = status_field(Status.choices)
    progress = models.CharField(max_length=300, blank=True)
    report = models.JSONField(default=dict, blank=True)
    n_cases = models.PositiveIntegerField(default=0)
    #: Mean over classes of the per-class mean test Dice.
    mean_dice = models.FloatField(null=True, blank=True)
    #: The largest-component decision made on the validation cases (postprocessing.json).
    postprocessing = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return f"Evaluation of {self.model}"


class ControlSet(models.Model):
    """The two control retrainings of a searched architecture's model: (a) a random
    architecture of the same method's space, (b) a hand-designed network; each an ordinary
    retraining run with the same recipe, steps and data."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="control_sets")
    #: The searched model the controls are for.
    model = models.OneToOneField("mlmodels.TrainedModel", on_delete=models.CASCADE, related_name="control_set")
    #: The retraining run that produced ``model`` (its recipe is copied).
    source_run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="+")
    random_run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="+")
    handdesigned_run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Controls of {self.model}"


class FoldSet(Job):
    """k-fold cross-validation retrainings of one architecture (nnU-Net's 5 folds by default)
    and the ensemble of their models: the members' softmax outputs averaged.

    ``training`` while the fold runs train; once every fold's model is registered the ensemble
    folder is written (``ensemble_dir``, relative to MEDIA_ROOT), its post-processing decided on
    each fold's own validation cases and it is scored on the test split (``report``, the engine's
    evaluation report) -> ``succeeded``. A fold run that fails or is cancelled fails the set.
    """

    class Status(models.TextChoices):
        TRAINING = "training", "Training the folds"
        RUNNING = "running", "Evaluating the ensemble"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.TRAINING: frozenset({Status.RUNNING, Status.FAILED}),
        Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
    }
    STATUS_NOUN = "fold ensemble"

    #: The model whose architecture and recipe the folds retrain.
    model = models.OneToOneField("mlmodels.TrainedModel", on_delete=models.CASCADE, related_name="fold_set")
    source_run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="+")
    num_folds = models.PositiveSmallIntegerField(default=5)
    #: Retraining run ids, fold 0 first.
    run_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True)
    progress = models.CharField(max_length=300, blank=True)
    ensemble_dir = models.CharField(max_length=500, blank=True)
    report = models.JSONField(default=dict, blank=True)
    mean_dice = models.FloatField(null=True, blank=True)

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.num_folds}-fold ensemble of {self.model}"

    @property
    def ensemble_path(self):
        from pathlib import Path

        return Path(settings.MEDIA_ROOT) / self.ensemble_dir if self.ensemble_dir else None
