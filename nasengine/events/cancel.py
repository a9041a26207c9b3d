"""Cooperative cancellation: the engine asks a token between steps."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class Cancelled(Exception):
    """Raised by the engine after a cancelled run wrote its checkpoint and event."""

    def __init__(self, step: int, checkpoint: str | None = None):
        self.step = step
        self.checkpoint = checkpoint
        super().__init__(f"cancelled at step {step}"
                         + (f"; checkpoint {checkpoint}" if checkpoint else ""))


class CancelToken:
    """A token that is cancelled by calling ``cancel()``; subclasses ask elsewhere."""

    def __init__(self) -> None:
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def is_cancelled(self) -> bool:
        return self._cancelled


class FileCancelToken(CancelToken):
    """Cancelled once ``path`` exists (a worker or user can ``touch`` it)."""

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__()
        self.path = Path(path)

    def is_cancelled(self) -> bool:
        return self._cancelled or self.path.exists()


class CallableCancelToken(CancelToken):
    """Cancelled when ``fn()`` returns true (e.g. a database flag lookup)."""

    def __init__(self, fn: Callable[[], bool]):
        super().__init__()
        self.fn = fn

    def is_cancelled(self) -> bool:
        return self._cancelled or bool(self.fn())


def as_cancel_token(token: CancelToken | Callable[[], bool] | str | os.PathLike[str] | None
                    ) -> CancelToken:
    """None -> a token nobody cancels; a callable -> CallableCancelToken; a path ->
    FileCancelToken; a token -> itself."""
    if token is None:
        return CancelToken()
    if isinstance(token, CancelToken):
        return token
    if isinstance(token, (str, os.PathLike)):
        return FileCancelToken(token)
    if callable(token):
        return CallableCancelToken(token)
    raise TypeError(f"not a cancel token: {token!r}")
