"""Resumable uploads: the storage behind the tus 1.0 protocol (core, creation, termination,
expiration; https://tus.io/protocols/resumable-upload). The HTTP side is ``tus_views``.

An upload is a folder ``MEDIA_ROOT/uploads/tus/<user id>/<upload id>/`` holding ``info.json``
(declared length, metadata, owner) and ``data`` (the bytes received so far). The offset is the
size of ``data``, which is fsync'ed after each chunk: it survives a dropped connection, a
restart of the web server and of the machine, so a client resumes where the file ends. Nothing
about an upload is held in memory.

Choices:

* files, not database rows: the offset must be what is on disk anyway, and the folder is the
  whole state (no migration; a folder removed by hand is an upload gone, nothing dangles);
* per user: a user's uploads live in that user's folder and no one else can see them by id;
* caps: one upload is at most ``MAX_UPLOAD_BYTES``, and so is the sum of a user's unfinished
  uploads (the same cap as one multipart upload); at most ``DATA_UPLOAD_MAX_NUMBER_FILES`` of them;
* an upload untouched for ``VOXELSEARCH["RESUMABLE_UPLOAD_EXPIRY_HOURS"]`` (24) expires and is
  removed (Celery beat, ``remove_expired_uploads``).
"""
from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .bodylimit import max_upload_bytes

CHUNK = 1024 * 1024  # bytes copied at a time: memory stays flat whatever the upload's size
DEFAULT_EXPIRY_HOURS = 24


class UploadError(Exception):
    """A request the protocol refuses: ``status`` is the HTTP status, ``message`` says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads" / "tus"


def expiry_seconds() -> float:
    hours = settings.VOXELSEARCH.get("RESUMABLE_UPLOAD_EXPIRY_HOURS", DEFAULT_EXPIRY_HOURS)
    return float(hours) * 3600


def max_uploads_per_user() -> int:
    return int(getattr(settings, "DATA_UPLOAD_MAX_NUMBER_FILES", None) or 2000)


@dataclass
class Upload:
    """One resumable upload of one user."""

    user_id: int
    upload_id: str
    folder: Path
    length: int
    metadata: dict[str, str]

    @property
    def data_path(self) -> Path:
        return self.folder / "data"

    @property
    def offset(self) -> int:
        try:
            return self.data_path.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    @property
    def filename(self) -> str:
        return self.metadata.get("filename") or self.metadata.get("name") or ""

    @property
    def expires_at(self) -> float:
        """When it expires (epoch seconds): its last write plus the expiry."""
        return _last_touched(self.folder) + expiry_seconds()


def _user_folder(user_id: int) -> Path:
    return uploads_root() / str(int(user_id))


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (header or "").split(","))):
        key, _, value = pair.partition(" ")
        if not key or not key.isascii() or " " in key:
            raise UploadError(400, f"Upload-Metadata has a malformed key: {key[:40]!r}.")
        try:
            metadata[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise UploadError(400, f"Upload-Metadata: the value of {key[:40]!r} is not base64 of UTF-8 text.") from None
        if len(metadata[key]) > 1000:
            raise UploadError(400, f"Upload-Metadata: the value of {key[:40]!r} is longer than 1000 characters.")
    return metadata


def user_uploads(user_id: int) -> list[Upload]:
    found = []
    folder = _user_folder(user_id)
    if folder.is_dir():
        for child in folder.iterdir():
            upload = get_upload(user_id, child.name)
            if upload is not None:
                found.append(upload)
    return found


def create_upload(*, user_id: int, length: int, metadata: dict[str, str]) -> Upload:
    """Reserve an upload of ``length`` bytes for the user (nothing is written but its info)."""
    cap = max_upload_bytes()
    if length > cap:
        raise UploadError(413, f"The file is {filesizeformat(length)}, more than the limit of {filesizeformat(cap)}.")
    remove_expired_uploads(user_id=user_id)
    mine = user_uploads(user_id)
    if len(mine) >= max_uploads_per_user():
        raise UploadError(429, f"You have {len(mine)} unfinished uploads; finish or cancel some first.")
    reserved = sum(u.length for u in mine)
    if reserved + length > cap:
        raise UploadError(413, (
            f"Your unfinished uploads already reserve {filesizeformat(reserved)}; with this "
            f"{filesizeformat(length)} file they would pass the limit of {filesizeformat(cap)}. "
            "Finish or cancel them first (they expire after a day)."
        ))
    upload_id = uuid.uuid4().hex
    folder = _user_folder(user_id) / upload_id
    folder.mkdir(parents=True, mode=0o750)
    info = {"length": length, "metadata": metadata, "user": user_id, "created": time.time()}
    (folder / "info.json").write_text(json.dumps(info))
    (folder / "data").touch(mode=0o640)
    return Upload(user_id=user_id, upload_id=upload_id, folder=folder, length=length, metadata=metadata)


def get_upload(user_id: int, upload_id: str) -> Upload | None:
    """The user's upload with that id, or None (another user's is None too)."""
    if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
        return None
    folder = _user_folder(user_id) / upload_id
    try:
        info = json.loads((folder / "info.json").read_text())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if info.get("user") != user_id:
        return None
    return Upload(user_id=user_id, upload_id=upload_id, folder=folder, length=int(info["length"]),
                  metadata=dict(info.get("metadata") or {}))


@contextmanager
def locked(upload: Upload):
    """One writer at a time per upload (a second PATCH, or a second use of a finished upload,
    while one runs is refused with 423)."""
    with open(upload.folder / "info.json", "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UploadError(423, "Another request is writing to this upload; try again when it ends.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def append(upload: Upload, *, offset: int, stream, declared_length: int | None) -> int:
    """Append the chunk read from ``stream`` at ``offset``; returns the new offset.

    ``offset`` must be where the upload ends (409 otherwise: the client asks HEAD and resumes
    from there). A chunk that would pass the declared length is refused before it is read."""
    with locked(upload):
        current = upload.offset
        if offset != current:
            raise UploadError(409, f"Upload-Offset is {offset} but the upload is at {current}; ask HEAD and resume from there.")
        room = upload.length - current
        if declared_length is not None and declared_length > room:
            raise UploadError(413, f"This chunk of {declared_length} bytes would pass the upload's length ({room} bytes left).")
        written = 0
        with open(upload.data_path, "ab") as out:
            try:
                while True:
                    block = stream.read(min(CHUNK, room - written + 1))
                    if not block:
                        break
                    if written + len(block) > room:
                        out.write(block[: room - written])
                        written = room
                        raise UploadError(413, "The chunk passes the upload's declared length; the bytes past it were dropped.")
                    out.write(block)
                    written += len(block)
            finally:
                out.flush()
                os.fsync(out.fileno())  # the offset a client resumes from is on disk
        return current + written


def delete_upload(upload: Upload) -> None:
    shutil.rmtree(upload.folder, ignore_errors=True)


def _last_touched(folder: Path) -> float:
    times = []
    for name in ("info.json", "data"):
        try:
            times.append((folder / name).stat().st_mtime)
        except FileNotFoundError:
            continue
    return max(times) if times else 0.0


def remove_expired_uploads(*, user_id: int | None = None, now: float | None = None) -> int:
    """Remove uploads untouched for longer than the expiry (one user's, or everyone's);
    returns how many. A folder that is not an upload (no info.json) and is as old goes too."""
    now = time.time() if now is None else now
    root = uploads_root()
    users = [_user_folder(user_id)] if user_id is not None else ([p for p in root.iterdir() if p.is_dir()] if root.is_dir() else [])
    removed = 0
    for user_folder in users:
        if not user_folder.is_dir():
            continue
        for folder in user_folder.iterdir():
            touched = _last_touched(folder) or folder.stat().st_mtime
            if now - touched > expiry_seconds():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed
