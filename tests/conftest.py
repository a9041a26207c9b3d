"""Shared fixtures: test database, isolated Redis, a real Celery worker, a live ASGI server.

Everything real, nothing mocked:

* Database: SQLite in a temporary file by default (shared with the worker and server processes),
  PostgreSQL when ``DATABASE_URL`` points at one (CI). Tests that need a worker or the live
  server must use ``transactional_db`` (their data must be committed to be seen).
* Redis: ``VOXELSEARCH_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/13``) with a key
  prefix unique to this test session, so parallel test runs and a running dev system never
  see each other's queues or channel groups.
* ``celery_worker``: ``celery -A webapp worker -Q default,gpu --pool solo`` as a subprocess.
* ``asgi_live_server``: ``uvicorn webapp.asgi:application`` as a subprocess (HTTP + WebSocket +
  static files), ``.url`` / ``.ws_url``.
* ``media_root``: this test's own MEDIA_ROOT (a fresh temporary folder per test, so no test finds
  files another left). The subprocesses get ``media_link``, a symbolic link that each test points
  at its own folder, so the worker and the live server see the same files as the test.
* ``subprocess_env``: the environment the subprocesses run with (for other server processes).
* ``make_user`` / ``make_project``: factories (``client.force_login(user)`` to sign in).
* ``asgi_call(method, path, headers, chunks)``: one request through the real ASGI application in
  this process (static files and body cap included), for what the test client does not cover.
* ``session_cookie(user)``: a session cookie for the live server; ``ws_connect(url, cookies=...)``:
  a minimal real-socket WebSocket client; ``wait_for(predicate, timeout)``: polling helper.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from webtesting import MiniWebSocket

REPO = Path(__file__).resolve().parent.parent
TEST_REDIS_URL = os.environ.get("VOXELSEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
SESSION_PREFIX = f"vstest{os.getpid()}:"


# --- database ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """A test database of our own: a temp SQLite file (other processes can open it) or a
    PostgreSQL database named after this process (parallel runs do not drop each other's)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})
    if db["ENGINE"].endswith("sqlite3"):
        db["TEST"]["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        db["TEST"]["NAME"] = f"test_{db['NAME']}_{os.getpid()}"


def _database_url() -> str:
    """URL of the test database (call after django_db_setup)."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    original = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(original._replace(path=f"/{s['NAME']}"))


# --- settings for the whole session --------------------------------------------------------------
@pytest.fixture(scope="session")
def media_link(tmp_path_factory) -> Path:
    """The MEDIA_ROOT of the session's processes (worker, live server): a symbolic link that the
    ``media_root`` fixture points at the running test's own folder (issue 13.7: run ids are reused
    across tests, so a shared folder let a run find another test's checkpoint)."""
    base = tmp_path_factory.mktemp("media")
    idle = base / "between-tests"
    idle.mkdir()
    link = base / "current"
    link.symlink_to(idle, target_is_directory=True)
    return link


def _point_media_link(link: Path, target: Path) -> None:
    """Retarget the link in one step (a new link renamed over the old one), so a process never
    sees it missing."""
    fresh = link.with_name(f".{link.name}.{os.getpid()}")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target, target_is_directory=True)
    os.replace(fresh, link)


@pytest.fixture(autouse=True)
def media_root(request, tmp_path_factory, media_link) -> Path:
    """This test's own MEDIA_ROOT: a fresh folder, set in this process and, through
    ``media_link``, in the worker and live-server subprocesses, for this test only."""
    from django.test.utils import override_settings

    folder = tmp_path_factory.mktemp("media-" + re.sub(r"\W", "_", request.node.name)[:40])
    _point_media_link(media_link, folder)
    override = override_settings(MEDIA_ROOT=folder)
    override.enable()
    try:
        yield folder
    finally:
        override.disable()
        _point_media_link(media_link, media_link.parent / "between-tests")


@pytest.fixture(scope="session", autouse=True)
def _session_settings(media_link):
    """Point media, Redis, Celery and Channels at session-private places."""
    from django.test.utils import override_settings

    from webapp.celery import app

    layer = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [TEST_REDIS_URL], "prefix": f"{SESSION_PREFIX}asgi", "capacity": 1000, "expiry": 60},
        }
    }
    override = override_settings(
        MEDIA_ROOT=media_link,
        REDIS_URL=TEST_REDIS_URL,
        REDIS_KEY_PREFIX=SESSION_PREFIX,
        CHANNEL_LAYERS=layer,
        CELERY_BROKER_URL=TEST_REDIS_URL,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    override.enable()
    app.conf.broker_url = TEST_REDIS_URL
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": SESSION_PREFIX}
    try:
        yield
    finally:
        override.disable()
        _flush_prefix()


def _flush_prefix() -> None:
    try:
        import redis

        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=f"{SESSION_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:
        pass


@pytest.fixture(scope="session", autouse=True)
def _end_stray_test_database_sessions(django_db_setup, django_db_blocker):
    """Before pytest-django drops the PostgreSQL test database, end the sessions still open on it
    (a thread of the in-process ASGI app, a server that was slow to exit): otherwise the drop
    fails with "being accessed by other users" and every run leaves a database behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def subprocess_env(django_db_setup, django_db_blocker, media_link) -> dict[str, str]:
    """Environment for server/worker processes that must see this session's database,
    media folder (the link each test points at its own) and Redis prefix."""
    from django.conf import settings

    with django_db_blocker.unblock():
        database_url = _database_url()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings",
        DATABASE_URL=database_url,
        MEDIA_ROOT=str(media_link),
        REDIS_URL=TEST_REDIS_URL,
        REDIS_KEY_PREFIX=SESSION_PREFIX,
        SECRET_KEY=settings.SECRET_KEY,  # the same key: sessions made here are valid there
        PYTHONUNBUFFERED="1",
        VOXELSEARCH_FAST_PASSWORD_HASHER="1",
    )
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CHANNEL_LAYER_URL", None)
    return env


# --- processes ---------------------------------------------------------------------------------
def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"{what} did not start within {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def celery_worker(subprocess_env, tmp_path_factory):
    """A real Celery worker for both queues (pool solo), against the test database and Redis.

    Yields an object with ``log`` (its log file) and ``proc``. Use with ``transactional_db``.
    """
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "default,gpu", "--pool", "solo",
        "--concurrency", "1", "-n", f"test-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-l", "INFO",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env, stdout=out, stderr=subprocess.STDOUT)
    _wait_for(lambda: b" ready." in log.read_bytes(), 90, proc, log, "The Celery worker")
    yield WorkerHandle(proc=proc, log=log)
    _stop(proc)


@dataclass
class WorkerHandle:
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class LiveServer:
    host: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def asgi_live_server(subprocess_env, tmp_path_factory):
    """The real ASGI app under uvicorn (HTTP, WebSocket, static files) on a free port, as
    scripts/run-demo and docker/web.sh serve it (issue 14: uvicorn streams request bodies)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
           "--no-access-log", "webapp.asgi:application"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env, stdout=out, stderr=subprocess.STDOUT)
    _wait_for(lambda: _port_open(port), 60, proc, log, "The ASGI server (uvicorn)")
    yield LiveServer(host="127.0.0.1", port=port, proc=proc, log=log)
    _stop(proc)


# --- factories ---------------------------------------------------------------------------------
@pytest.fixture
def make_user(django_user_model):
    counter = {"n": 0}

    def make(username: str | None = None, password: str = "pw-for-tests-1", **extra):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        extra.setdefault("email", f"{username}@example.org")
        return django_user_model.objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def make_project():
    """``make_project(owner, name="P", editors=[...], viewers=[...])``."""
    from webapp.projects.models import Membership
    from webapp.projects.services import project_create

    def make(owner, name: str = "Project", editors=(), viewers=()):
        project = project_create(user=owner, name=name)
        for user in editors:
            Membership.objects.create(project=project, user=user, role=Membership.Role.EDITOR)
        for user in viewers:
            Membership.objects.create(project=project, user=user, role=Membership.Role.VIEWER)
        return project

    return make


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait_for():
    return wait_until


@pytest.fixture
def ws_connect():
    """``ws_connect(url, cookies={"sessionid": ...})`` -> MiniWebSocket (closed after the test)."""
    opened: list[MiniWebSocket] = []

    def connect(url: str, **kwargs) -> MiniWebSocket:
        ws = MiniWebSocket(url, **kwargs)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        ws.close()


@pytest.fixture
def session_cookie():
    """``session_cookie(user)`` -> ``{"sessionid": ...}`` for a signed-in session (live server, sockets)."""

    def make(user) -> dict[str, str]:
        from django.test import Client

        c = Client()
        c.force_login(user)
        return {"sessionid": c.cookies["sessionid"].value}

    return make
