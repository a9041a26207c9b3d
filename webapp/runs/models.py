"""Runs (a search or a retraining job) and the events they report."""
import uuid
from pathlib import Path

from django.conf import settings
from django.db import models

from webapp.common.jobs import Job, status_field
from webapp.common.status import IllegalTransition  # (re-exported)
from webapp.datasets.models import Dataset


class Run(Job):
    """One search or retraining job on a dataset.

    Files (engine output, checkpoints, the retrained bundle) live under
    ``MEDIA_ROOT/runs/<storage_key>/``, a folder no other run can have, so a run never finds
    files it did not write (runs created before the key existed keep ``runs/<id>/``). The
    status changes only through :meth:`transition`.
    """

    class Kind(models.TextChoices):
        SEARCH = "search", "Search"
        RETRAIN = "retrain", "Retrain"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    #: queued -> running -> succeeded | failed | cancelled; a queued run may also be cancelled
    #: (or fail to be queued). succeeded, failed and cancelled are final.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
        Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    #: SET_NULL: a dataset (patient data) can always be deleted; its runs stay as records.
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SEARCH)
    method = models.CharField(max_length=32)
    preset = models.CharField(max_length=32)
    #: The user's values on top of the preset (what the engine gets as ``overrides``).
    config = models.JSONField(default=dict, blank=True)
    #: The full config the engine resolved from preset + overrides (for display and cloning).
    resolved_config = models.JSONField(default=dict, blank=True)
    seed = models.PositiveIntegerField(default=0)
    gpu_budget_bytes = models.BigIntegerField()
    estimate_bytes = models.BigIntegerField(default=0)
    estimate_details = models.JSONField(default=dict, blank=True)
    status = status_field(Status.choices)
    cancel_requested = models.BooleanField(default=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones")
    #: Search: the decoded genotype it found. Retrain: the genotype it trains.
    genotype = models.JSONField(null=True, blank=True)
    #: Retrain: the search run whose genotype this trains (None for an uploaded genotype).
    source_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retrains")
    progress = models.JSONField(default=dict, blank=True)
    best_mean_dice = models.FloatField(null=True, blank=True)
    #: Retrain: once it succeeds, train the two controls beside it (random architecture and
    #: the hand-designed network: ``webapp.evaluations.services.launch_controls``; signals.py).
    controls_requested = models.BooleanField(default=False)
    # -- the worker that holds the run (claim guard) -----------------------------------------
    claim_token = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    #: When a job was last re-sent for this run because its worker seemed lost (one at a time).
    requeued_at = models.DateTimeField(null=True, blank=True)
    #: ``attempts`` when the run was last resumed by a user: the runtime gives a run up after
    #: MAX_ATTEMPTS attempts *since then*, so a user's resumes do not use up its lost-worker
    #: allowance (``attempts`` itself only grows: checkpoint ownership names the attempt).
    attempts_at_resume = models.PositiveSmallIntegerField(default=0)
    #: Names the run's folder. Null only for runs created before it existed (their folder is
    #: ``runs/<id>``, which a later run with a reused id could collide with).
    storage_key = models.UUIDField(null=True, default=uuid.uuid4, unique=True, editable=False)

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return self.name or f"{self.get_kind_display()} #{self.pk}"

    # -- the one place where status changes: StatusMachine.transition() -----------------------
    STATUS_NOUN = "run"

    def on_transition(self, new_status, now, *, error: str | None = None) -> list[str]:
        fields = super().on_transition(new_status, now, error=error)
        if not self.TRANSITIONS[new_status]:
            self.claim_token = ""  # a finished run belongs to no worker
            fields.append("claim_token")
        return fields

    def reopen_for_resume(self) -> list[str]:
        """Queue a cancelled run again so a worker resumes it from its checkpoint.

        ``cancelled`` stays final for everything else (delete, the claim guard, the list): this
        is the one way out of it, taken only by ``services.run_resume``. ``attempts`` is kept:
        the next claim is a *later* attempt of this run, which resumes from the checkpoints the
        run's ownership record vouches for (``runtime.start_point``; the record names the
        attempt that wrote them, which must be earlier than the one loading them). The
        lost-worker count starts again from here (``attempts_at_resume``). Returns the fields
        it set (not saved).
        """
        if self.status != self.Status.CANCELLED:
            raise IllegalTransition(f"Only a cancelled run can be resumed; this one is {self.status}.")
        from django.utils import timezone

        self.status = self.Status.QUEUED
        self.status_changed_at = timezone.now()
        self.finished_at = None
        self.cancel_requested = False
        self.error = ""
        self.claim_token = ""
        self.requeued_at = None
        self.attempts_at_resume = self.attempts
        return ["status", "status_changed_at", "finished_at", "cancel_requested", "error", "claim_token", "requeued_at",
                "attempts_at_resume"]

    @property
    def attempts_since_resume(self) -> int:
        """Attempts since the run was created or last resumed (what MAX_ATTEMPTS caps)."""
        return self.attempts - self.attempts_at_resume

    @property
    def out_dir(self) -> Path:
        """Engine output and checkpoints of this run."""
        name = str(self.storage_key) if self.storage_key is not None else str(self.pk)
        return Path(settings.MEDIA_ROOT) / "runs" / name

    @property
    def bundle_dir(self) -> Path:
        """Retrain: the model bundle the engine writes (the output folder itself; its
        ``checkpoints/`` sub-folder is not part of the bundle)."""
        return self.out_dir


class RunEvent(models.Model):
    """One engine event of a run: the source of truth for the dashboard and its replay."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    #: A core type (``step``) or a method's namespaced one (``c2fnas.candidate_finished``).
    type = models.CharField(max_length=80)
    time = models.FloatField()
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["run_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_run_event_seq")]

    def as_message(self) -> dict:
        return {"seq": self.seq, "type": self.type, "time": self.time, **self.payload}
