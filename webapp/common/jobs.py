"""One abstract model for the jobs a worker executes (runs and predictions).

A job belongs to a project, was created by someone, moves through its status machine
(:class:`~webapp.common.status.StatusMachine`: ``transition()`` is the one place its status
changes), is attempted by workers (``attempts`` counts deliveries, so a job that kills its
worker each time is given up) and records when it started, when it finished and, when it
failed, why (``error``).

What is not shared stays on the concrete model: each declares its ``Status`` choices and
``TRANSITIONS`` (a prediction cannot be cancelled), its ``status`` field via
:func:`status_field`, its files and its progress.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from .status import StatusMachine, stamp_job_times


def status_field(choices) -> models.CharField:
    """The ``status`` column of a job: a short indexed string, ``queued`` when created."""
    return models.CharField(max_length=16, choices=choices, default="queued", db_index=True)


class Job(StatusMachine, models.Model):
    """Fields and behaviour common to every worker job. Abstract: no table of its own; the
    columns live in each concrete model's table exactly as before (no data moves)."""

    #: PROTECT: a project with jobs cannot disappear under them. Reverse names: ``project.runs``,
    #: ``project.predictions``.
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="%(class)ss")
    #: Why the job failed (or was given up), worded for the researcher.
    error = models.TextField(blank=True)
    #: How many times a worker took the job (a redelivered job counts again).
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    #: The first time it went to ``running`` (kept across worker restarts).
    started_at = models.DateTimeField(null=True, blank=True)
    #: When it reached a final status.
    finished_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def on_transition(self, new_status: str, now: datetime, *, error: str | None = None) -> list[str]:
        """Stamp the start, the end and the reason; returns the fields it set."""
        return stamp_job_times(self, new_status, now, error)

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from the first start to the end (or to now while it runs); None before it starts."""
        if self.started_at is None:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
