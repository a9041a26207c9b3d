"""One status state machine for every job-like model (datasets, runs, predictions).

A model mixes in :class:`StatusMachine` and declares a ``Status`` choices class, a
``TRANSITIONS`` map (status -> the statuses it may move to; a final status maps to an empty
set), a ``status`` field and a ``status_changed_at`` field. ``transition()`` is then the one
place where its status changes; what else a model stamps on a change (start and finish times,
reasons) goes in its ``on_transition`` hook.
"""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone


class IllegalTransition(ValidationError):
    """A status change the state machine does not allow."""


class StatusMachine:
    STATUS_NOUN = "object"  # for messages: "A run cannot go from running to queued."

    def can_transition(self, new_status: str) -> bool:
        return new_status in self.TRANSITIONS.get(self.status, frozenset())

    @property
    def is_final(self) -> bool:
        return not self.TRANSITIONS[self.status]

    def transition(self, new_status: str, *, save: bool = True, **changes):
        """Move to ``new_status`` or raise :class:`IllegalTransition`; ``changes`` go to the
        model's ``on_transition`` (e.g. ``error=...``). Saves only the fields that changed."""
        if new_status not in self.Status.values:
            raise IllegalTransition(f"Unknown {self.STATUS_NOUN} status {new_status!r}.")
        if not self.can_transition(new_status):
            raise IllegalTransition(f"A {self.STATUS_NOUN} cannot go from {self.status} to {new_status}.")
        now = timezone.now()
        self.status = new_status
        self.status_changed_at = now
        fields = ["status", "status_changed_at", *self.on_transition(new_status, now, **changes)]
        if save:
            self.save(update_fields=fields)
        return self

    def on_transition(self, new_status: str, now: datetime, **changes) -> list[str]:
        """Stamp what else changes with the status; returns the names of the fields it set."""
        if changes:
            raise TypeError(f"Unexpected arguments for a {self.STATUS_NOUN} transition: {', '.join(changes)}")
        return []


def stamp_job_times(job, new_status: str, now: datetime, error: str | None) -> list[str]:
    """For jobs with ``started_at``, ``finished_at`` and ``error``: the first start, the end, the reason."""
    fields = []
    if new_status == job.Status.RUNNING and job.started_at is None:
        job.started_at = now
        fields.append("started_at")
    if not job.TRANSITIONS[new_status]:
        job.finished_at = now
        fields.append("finished_at")
    if error is not None:
        job.error = error
        fields.append("error")
    return fields
