"""The Celery candidate executor of C2FNAS: one ``gpu``-queue task per candidate, and the
orchestration as short ``default``-queue tasks woken by each candidate's completion.

- ``c2fnas_advance(root)`` (default queue): ``distributed.advance`` (load the strategy state,
  record the results, fill the free slots with ``c2fnas_train_candidate`` messages, save) and
  exit; when the coarse stage is done it sends ``c2fnas_finish`` once. While candidates are in
  flight it also keeps one delayed wake-up pending (``stale_seconds``), so a candidate whose
  worker was killed is sent again even when no other completion comes.
- ``c2fnas_train_candidate(root, spec)`` (gpu queue, acks late): trains one candidate
  (resuming its own checkpoint), writes its result, then sends ``c2fnas_advance``.
- ``c2fnas_finish(root)`` (gpu queue): the fine stage and the final genotype.

No task waits on another's result (Celery forbids ``result.get()`` inside a task): completion
is a new message. A worker must import this module (``celery worker --include
webapp.runs.candidates``, or an import in ``webapp/runs/tasks.py``).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from celery import shared_task

from nasengine.methods.c2fnas import distributed

log = logging.getLogger(__name__)

__all__ = ["start_search", "cancel_search", "c2fnas_advance", "c2fnas_train_candidate",
           "c2fnas_finish"]


def _send_candidate(root: str, spec: dict[str, Any]) -> None:
    c2fnas_train_candidate.apply_async(args=[root, spec], queue="gpu")


def _wake_later(root: str, seconds: float) -> None:
    """Keep exactly one delayed ``advance`` pending (the liveness check of candidates)."""
    marker = Path(root) / "wake_due"
    now = time.time()
    if marker.exists():
        try:
            if float(marker.read_text() or 0) > now:
                return
        except ValueError:
            pass
    marker.write_text(str(now + seconds))
    c2fnas_advance.apply_async(args=[root], queue="default", countdown=seconds)


@shared_task(name="webapp.runs.candidates.c2fnas_advance", acks_late=True, ignore_result=True)
def c2fnas_advance(root: str) -> str:
    status = distributed.advance(root, lambda spec: _send_candidate(root, spec))
    if status == "coarse_done":
        sent = Path(root) / "finish_sent"
        if not sent.exists():
            sent.touch()
            c2fnas_finish.apply_async(args=[root], queue="gpu")
    elif status == "running":
        settings = json.loads((Path(root) / "settings.json").read_text())
        _wake_later(root, float(settings["stale_seconds"]))
    return status


@shared_task(bind=True, name="webapp.runs.candidates.c2fnas_train_candidate", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True)
def c2fnas_train_candidate(self, root: str, spec: dict[str, Any]) -> str:
    status = distributed.run_candidate(root, spec, worker=self.request.hostname or "")
    c2fnas_advance.apply_async(args=[root], queue="default")
    return status


@shared_task(name="webapp.runs.candidates.c2fnas_finish", acks_late=True, ignore_result=True)
def c2fnas_finish(root: str) -> str:
    distributed.finish(root)
    return "finished"


def start_search(root: str | Path, data_dir: str | Path, *, preset: str = "tiny",
                 overrides: dict[str, Any] | None = None, workers: int = 1,
                 stale_seconds: float = 120.0, device: str | None = None) -> Path:
    """Write a search folder and send its first ``advance``; returns the folder."""
    distributed.start(root, data_dir, preset=preset, overrides=overrides, workers=workers,
                      stale_seconds=stale_seconds, device=device)
    c2fnas_advance.apply_async(args=[str(root)], queue="default")
    return Path(root)


def cancel_search(root: str | Path) -> None:
    """Cancel the search and its candidates (running ones stop at their next step, queued
    ones do not start)."""
    (Path(root) / "cancel").touch()
    c2fnas_advance.apply_async(args=[str(root)], queue="default")
