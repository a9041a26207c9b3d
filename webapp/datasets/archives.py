"""Safe extraction of uploaded archives (.zip, .tar, .tar.gz / .tgz).

Two lines of defence:

1. ``check_archive`` reads the archive's directory (zip central directory, tar headers) and refuses
   it before anything is written: absolute paths or ``..`` in member names, links, devices and
   other special members, too many members, too many uncompressed bytes, a compression ratio
   beyond the limit (decompression bombs).
2. ``extract_archive`` streams each member to disk in chunks and enforces the same caps on the
   bytes actually produced, because an archive's directory can lie.

Every refusal is an :class:`ArchiveError` worded for a researcher.
"""
from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20
MAX_NAME_BYTES = 255  # longest file or folder name most file systems accept
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


class ArchiveError(Exception):
    def __init__(self, member: str, problem: str):
        self.member = member
        self.problem = problem
        super().__init__(f"{member}: {problem}" if member else problem)


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_members: int
    max_ratio: float


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    is_dir: bool


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


def safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or ArchiveError for absolute paths and ``..``."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) >= 2 and raw[1] == ":") or raw.startswith("//"):
        raise ArchiveError(name, "the archive contains a file with an absolute path; refused for safety")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(name, "the archive contains a path with '..' that points outside it; refused for safety")
    if not parts:
        raise ArchiveError(name, "the archive contains a member with an empty name")
    if any("\x00" in p for p in parts):
        raise ArchiveError(name, "the archive contains a member name with a NUL character")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        raise ArchiveError(name, f"the archive contains a file or folder name longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)


def _archive_kind(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, tarfile.TarError):
        pass
    raise ArchiveError(path.name, "the file is not a readable .zip or .tar.gz archive")


class _Totals:
    """The directory caps, checked member by member: a tar.gz is read header by header, and
    reaching the next header means decompressing the member before it, so a bomb must be refused
    at the first header that breaks a cap, not after all of them have been read."""

    def __init__(self, archive: Path, limits: ArchiveLimits):
        self.archive = archive.name
        self.limits = limits
        self.compressed = max(archive.stat().st_size, 1)
        self.members = 0
        self.total = 0

    def add(self, member: Member) -> Member:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                self.archive, f"the archive holds more than the limit of {self.limits.max_members:,} entries"
            )
        if not member.is_dir:
            self.total += member.size
        if self.total > self.limits.max_total_bytes:
            raise ArchiveError(
                self.archive,
                f"the archive would unpack to more than the limit of {_mb(self.limits.max_total_bytes)}",
            )
        if self.total / self.compressed > self.limits.max_ratio:
            raise ArchiveError(
                self.archive,
                f"the archive would unpack to more than {self.limits.max_ratio:,.0f} times its size; "
                "it looks like a decompression bomb and was refused",
            )
        return member


def _zip_members(zf: zipfile.ZipFile, totals: _Totals) -> list[tuple[zipfile.ZipInfo, Member]]:
    out = []
    for info in zf.infolist():
        file_type = stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)  # 0 when the zip tool set none
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(info.filename, "the archive contains a link or special file; refused for safety")
        if info.flag_bits & 0x1:
            raise ArchiveError(info.filename, "the archive is encrypted; upload it without a password")
        safe_member_path(info.filename)
        ratio = info.file_size / info.compress_size if info.compress_size else 0
        if ratio > totals.limits.max_ratio:
            raise ArchiveError(
                info.filename,
                f"this member would unpack to {ratio:,.0f} times its compressed size "
                f"(limit {totals.limits.max_ratio:,.0f}x); it looks like a decompression bomb and was refused",
            )
        out.append((info, totals.add(Member(info.filename, info.file_size, info.is_dir()))))
    return out


def _tar_members(tf: tarfile.TarFile, totals: _Totals) -> list[tuple[tarfile.TarInfo, Member]]:
    out = []
    for info in tf:  # streams through the archive; headers only are kept
        if info.issym() or info.islnk():
            raise ArchiveError(info.name, "the archive contains a symbolic or hard link; refused for safety")
        if not (info.isreg() or info.isdir()):
            raise ArchiveError(info.name, "the archive contains a device, pipe or other special file; refused for safety")
        safe_member_path(info.name)
        out.append((info, totals.add(Member(info.name, info.size, info.isdir()))))
    return out


def check_archive(path: Path, limits: ArchiveLimits) -> list[Member]:
    """Check the archive's directory; return its members or raise ArchiveError."""
    kind = _archive_kind(path)
    totals = _Totals(path, limits)
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                pairs = _zip_members(zf, totals)
        else:
            with tarfile.open(path, mode="r:*") as tf:
                pairs = _tar_members(tf, totals)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(path, exc) from exc
    return [m for _, m in pairs]


class _Budget:
    def __init__(self, archive: str, limits: ArchiveLimits, compressed_size: int):
        self.archive = archive
        self.limits = limits
        self.compressed = max(compressed_size, 1)
        self.written = 0

    def add(self, member: str, n: int, member_written: int, member_declared: int) -> None:
        self.written += n
        if member_written > member_declared:
            raise ArchiveError(member, "the member is larger than the archive's directory says; refused")
        if self.written > self.limits.max_total_bytes:
            raise ArchiveError(
                self.archive,
                f"the archive unpacks to more than the limit of {_mb(self.limits.max_total_bytes)}",
            )
        if self.written / self.compressed > self.limits.max_ratio and self.written > CHUNK:
            raise ArchiveError(
                self.archive,
                f"the archive unpacks to more than {self.limits.max_ratio:,.0f} times its size; "
                "it looks like a decompression bomb and was refused",
            )


def _copy_capped(src, dst_path: Path, member: str, declared: int, budget: _Budget) -> None:
    written = 0
    fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as dst:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            budget.add(member, len(chunk), written, declared)
            dst.write(chunk)


def _damaged(path: Path, exc: BaseException) -> ArchiveError:
    """The refusal for an unreadable archive. An OSError's text names server paths (where it was
    being extracted): only its reason is shown."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ArchiveError(path.name, f"the archive is damaged or truncated ({reason})")


def _target(dest: Path, name: str) -> Path:
    rel = safe_member_path(name)
    target = (dest / rel).resolve()
    if dest.resolve() not in target.parents and target != dest.resolve():
        raise ArchiveError(name, "the member would be written outside the extraction folder; refused")
    return target


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits) -> list[Path]:
    """Check then stream-extract the archive into ``dest`` (which must be empty or absent).

    Returns the extracted regular files. Raises ArchiveError; ``dest`` may then hold a partial
    extraction, which the caller removes.
    """
    check_archive(path, limits)
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(path.name, limits, path.stat().st_size)
    files: list[Path] = []
    count = 0
    try:
        if _archive_kind(path) == "zip":
            with zipfile.ZipFile(path) as zf:
                for info, member in _zip_members(zf, _Totals(path, limits)):
                    count += 1
                    if count > limits.max_members:
                        raise ArchiveError(path.name, "the archive holds too many entries")
                    target = _target(dest, info.filename)
                    if member.is_dir:
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src:
                        _copy_capped(src, target, info.filename, info.file_size, budget)
                    files.append(target)
        else:
            with tarfile.open(path, mode="r:*") as tf:
                for info in tf:
                    count += 1
                    if count > limits.max_members:
                        raise ArchiveError(path.name, "the archive holds too many entries")
                    if info.issym() or info.islnk() or not (info.isreg() or info.isdir()):
                        raise ArchiveError(info.name, "the archive contains a link or special file; refused for safety")
                    target = _target(dest, info.name)
                    if info.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(info)
                    if src is None:
                        raise ArchiveError(info.name, "the member cannot be read")
                    with src:
                        _copy_capped(src, target, info.name, info.size, budget)
                    files.append(target)
    except ArchiveError:
        raise
    except FileExistsError as exc:
        raise ArchiveError(path.name, f"the archive holds the same file twice ({Path(exc.filename).name})") from exc
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(path, exc) from exc
    return files
