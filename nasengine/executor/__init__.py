"""Candidate executors: the protocol a multi-candidate search submits through, the driver
loop, and the local (in-process, sequential) implementation. The web app adds a Celery one.
No web imports here."""

from .driver import CandidateSource, drive, fill_slots
from .local import LocalExecutor, Runner
from .protocol import CandidateExecutor, CandidateResult, CandidateSpec

__all__ = ["CandidateSpec", "CandidateResult", "CandidateExecutor", "CandidateSource",
           "LocalExecutor", "Runner", "drive", "fill_slots"]
