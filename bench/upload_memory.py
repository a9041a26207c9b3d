"""Web-server memory and time for large uploads: uvicorn vs daphne, multipart vs resumable (tus).

Issue 14 (F1): daphne parsed every multipart body with ``email.message_from_bytes`` and queued
the whole body, about 13 times over in memory. This bench uploads a generated file (never held
in this process's memory: it is streamed from a generator) to the real ASGI application under
each server and reports how much the server's resident memory grew and how long it took.

    .venv/bin/python bench/upload_memory.py                          # 200M and 1G, both servers, both modes
    .venv/bin/python bench/upload_memory.py --sizes 200M,1G,4G
    .venv/bin/python bench/upload_memory.py --servers uvicorn --modes tus --sizes 4G

Modes:
  multipart  one ``POST /api/projects/<id>/datasets/`` (what the page sent before issue 14)
  tus        ``POST /uploads/tus/`` then ``PATCH`` chunks of --chunk-mb (16, as the page), then
             ``POST /uploads/datasets/<id>/`` to make the dataset

Target: growth of at most 64 MB at every size. A server whose memory passes --rss-limit-mb
(3072) is killed and reported as such, so the bench cannot take the machine down (daphne would
need ~13x the upload). The server runs in a fresh SQLite database in a temporary folder, against
the local Redis with a key prefix of its own; everything is removed afterwards. Checks free disk
first (an upload is stored up to twice while Django spools and moves it).

The numbers are never asserted in a test (benchmarks only report).
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
BLOCK = b"\0" * MB  # the generated file: zeros (the server never looks at the bytes)


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    units = {"K": 1024, "M": MB, "G": 1024 * MB}
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (daphne and uvicorn run in one)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class RssSampler(threading.Thread):
    """Samples a process's RSS every 20 ms; kills it past ``limit``."""

    def __init__(self, pid: int, limit: int):
        super().__init__(daemon=True)
        self.pid, self.limit = pid, limit
        self.peak = 0
        self.killed = False
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            rss = rss_bytes(self.pid)
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.killed = True
                os.kill(self.pid, signal.SIGKILL)
                return
            time.sleep(0.02)


@dataclass
class Result:
    server: str
    mode: str
    size: int
    status: str
    seconds: float
    baseline: int
    peak: int
    killed: bool

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)


# --- the environment: a database, a user, a project ----------------------------------------------

def prepare(work: Path) -> tuple[dict, str, int]:
    """A migrated SQLite database with a user and a project; returns (env, session id, project id)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings",
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        MEDIA_ROOT=str(work / "media"),
        VOXELSEARCH_VAR_DIR=str(work / "var"),
        FILE_UPLOAD_TEMP_DIR=str(work / "tmp"),
        REDIS_KEY_PREFIX=f"vsbench{os.getpid()}:",
        VOXELSEARCH_MAX_UPLOAD_MB="8192",
        SECRET_KEY="bench-only-" + "x" * 40,
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    (work / "tmp").mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "from webapp.projects.services import project_create\n"
        "user = get_user_model().objects.create_user('bench', password='bench-password-1')\n"
        "project = project_create(user=user, name='Bench')\n"
        "c = Client(); c.force_login(user)\n"
        "print(c.cookies['sessionid'].value, project.pk)\n"
    )
    out = subprocess.run([sys.executable, "-m", "django", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return env, out[-2], int(out[-1])


def start_server(kind: str, env: dict, port: int, log: Path) -> subprocess.Popen:
    if kind == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
               "--no-access-log", "webapp.asgi:application"]
    else:
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} did not start:\n{log.read_text(errors='replace')[-2000:]}")


# --- the uploads ------------------------------------------------------------------------------------

def zeros(n: int):
    while n > 0:
        step = min(n, len(BLOCK))
        yield BLOCK[:step]
        n -= step


def headers_for(session: str) -> dict[str, str]:
    csrf = "b" * 32
    return {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf, "Accept": "application/json"}


def upload_multipart(port: int, session: str, project: int, size: int) -> str:
    boundary = "voxelsearchbench"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\n1: a\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"bench.nii.gz\"\r\n"
            "Content-Type: application/gzip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        yield from zeros(size)
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.request("POST", f"/api/projects/{project}/datasets/", body=body(), headers={
        **headers_for(session), "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail))})
    response = conn.getresponse()
    response.read()
    return str(response.status)


def upload_tus(port: int, session: str, project: int, size: int, chunk: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    tus = {**headers_for(session), "Tus-Resumable": "1.0.0"}
    name = base64.b64encode(b"bench.nii.gz").decode()
    conn.request("POST", "/uploads/tus/", headers={**tus, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}"})
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        return f"create {response.status}"
    location = response.getheader("Location")
    offset = 0
    while offset < size:
        n = min(chunk, size - offset)
        conn.request("PATCH", location, body=zeros(n), headers={
            **tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", "Content-Length": str(n)})
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            return f"patch {response.status}"
        offset = int(response.getheader("Upload-Offset"))
    conn.request("POST", f"/uploads/datasets/{project}/", body=json.dumps({"uploads": [location], "labels": "1: a"}),
                 headers={**tus, "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return str(response.status)


# --- main ---------------------------------------------------------------------------------------------

def run_one(kind, mode, size, env, session, project, work, args) -> Result:
    port = free_port()
    proc = start_server(kind, env, port, work / f"{kind}.log")
    try:
        # Warm up (imports, the first request's lazy set-up) before the baseline.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/accounts/login/")
        conn.getresponse().read()
        time.sleep(0.5)
        baseline = rss_bytes(proc.pid)
        sampler = RssSampler(proc.pid, args.rss_limit_mb * MB)
        sampler.start()
        started = time.monotonic()
        try:
            if mode == "multipart":
                status = upload_multipart(port, session, project, size)
            else:
                status = upload_tus(port, session, project, size, args.chunk_mb * MB)
        except (OSError, http.client.HTTPException) as exc:
            status = f"error: {type(exc).__name__}"
        seconds = time.monotonic() - started
        time.sleep(0.2)
        sampler.stop.set()
        sampler.join()
        if sampler.killed:
            status = f"killed at {args.rss_limit_mb} MB"
        return Result(kind, mode, size, status, seconds, baseline, sampler.peak, sampler.killed)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        # Uploaded bytes go away after each run (disk).
        for folder in (work / "media", work / "tmp"):
            shutil.rmtree(folder, ignore_errors=True)
        (work / "tmp").mkdir(exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200M,1G", help="comma-separated sizes, e.g. 200M,1G,4G")
    parser.add_argument("--servers", default="uvicorn,daphne")
    parser.add_argument("--modes", default="multipart,tus")
    parser.add_argument("--chunk-mb", type=int, default=16, help="tus chunk size (the page uses 16)")
    parser.add_argument("--rss-limit-mb", type=int, default=3072, help="kill a server whose memory passes this")
    parser.add_argument("--workdir", default=None, help="where the temporary database and uploads go (default: a temp folder)")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="vs-upload-bench-", dir=args.workdir))
    free = shutil.disk_usage(work).free
    if free < 3 * max(sizes):
        sys.exit(f"{human(free)} free under {work}: the {human(max(sizes))} upload needs about {human(3 * max(sizes))}")
    sys.path.insert(0, str(ROOT))
    results: list[Result] = []
    try:
        env, session, project = prepare(work)
        for size in sizes:
            for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
                for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
                    result = run_one(kind, mode, size, env, session, project, work, args)
                    results.append(result)
                    print(f"  {kind:8} {mode:9} {human(size):>9}: status {result.status}, growth {human(result.growth)}, "
                          f"{result.seconds:.1f} s", flush=True)
    finally:
        try:
            import redis

            client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            keys = list(client.scan_iter(match=f"vsbench{os.getpid()}:*"))
            if keys:
                client.delete(*keys)
        except Exception:
            pass
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| upload | server | mode | status | RSS before | RSS peak | growth | time | MB/s | growth <= 64 MB |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        ok = "yes" if (not r.killed and r.growth <= 64 * MB) else "**no**"
        rate = r.size / MB / r.seconds if r.seconds and not r.killed else 0
        print(f"| {human(r.size)} | {r.server} | {r.mode} | {r.status} | {human(r.baseline)} | "
              f"{human(r.peak)}{'+' if r.killed else ''} | {human(r.growth)}{'+' if r.killed else ''} | "
              f"{r.seconds:.1f} s | {rate:.0f} | {ok} |")


if __name__ == "__main__":
    main()
