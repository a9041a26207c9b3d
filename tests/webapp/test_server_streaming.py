"""The web server streams request bodies and caps them before reading (issue 14: F1, F2, F7),
and resumable (tus) uploads resume where a dropped connection stopped.

Everything runs against a real uvicorn serving ``webapp.asgi:application`` with small caps
(1 MiB off the upload routes, 4 MiB on them), through raw sockets, as an attacker or a browser
would send the bytes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webcorpus as corpus

from webapp.datasets.models import Dataset

REPO = Path(__file__).resolve().parents[2]
SMALL_CAP = 1024 * 1024
UPLOAD_CAP = 4 * 1024 * 1024
CSRF = "a" * 32  # a CSRF secret of the right form, sent as cookie and header


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def capped_server(subprocess_env, tmp_path_factory):
    """uvicorn with caps small enough to pass in a test."""
    port = _free_port()
    log = tmp_path_factory.mktemp("capped-uvicorn") / "uvicorn.log"
    env = {**subprocess_env, "VOXELSEARCH_MAX_REQUEST_MB": "1", "VOXELSEARCH_MAX_UPLOAD_MB": "4"}
    # WebSocket pings every second (uvicorn's default is 20 s), so the ping test is quick.
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
           "--no-access-log", "--ws-ping-interval", "1", "--ws-ping-timeout", "1", "webapp.asgi:application"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not _port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=15)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and the body read so far (Content-Length bodies whole)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    want = int(headers.get("content-length", "0") or 0)
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> tuple[int, dict, bytes]:
    with _connect(port) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        headers = dict(headers or {})
        if body or method in ("POST", "PATCH"):
            headers.setdefault("Content-Length", str(len(body)))
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return _read_response(sock)


# --- caps before reading (F1, F2) ------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path, declared", [("/accounts/login/", 200 * 1024 * 1024), ("/api/projects/1/datasets/", 5 * 1024**3)])
def test_a_declared_length_over_the_cap_is_refused_at_once_without_reading(capped_server, path, declared):
    """The anonymous 200 MiB sign-in and the 5 GiB dataset post of F1/F2: the answer comes at
    once, with not one byte of the body sent."""
    with _connect(capped_server) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                      f"Content-Length: {declared}\r\n\r\n").encode())
        started = time.monotonic()
        status, headers, body = _read_response(sock, timeout=5)
    assert status == 413
    assert time.monotonic() - started < 3
    assert "larger than the limit" in json.loads(body)["detail"]
    assert headers.get("connection") == "close"


@pytest.mark.django_db(transaction=True)
def test_the_sign_in_form_takes_no_body_larger_than_the_small_cap_but_an_upload_route_does(capped_server):
    small = b"x" * (2 * SMALL_CAP)  # over the 1 MiB small cap, under the 4 MiB upload cap
    status, _, _ = _request(capped_server, "POST", "/accounts/login/", {"Content-Type": "application/x-www-form-urlencoded"}, small)
    assert status == 413
    status, _, _ = _request(capped_server, "POST", "/api/projects/999999/datasets/", {"Content-Type": "application/x-www-form-urlencoded"}, small)
    assert status != 413  # 401/403/404: the body was accepted for what the route then decides


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_cut_at_the_cap_while_it_streams(capped_server):
    """No Content-Length: the body is counted as it arrives and the server answers 413 once it
    passes the cap, long before the client has sent what it meant to (here 64 MiB)."""
    block = b"y" * 65536
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    sent = 0
    with _connect(capped_server) as sock:
        sock.sendall(b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/octet-stream\r\n\r\n")
        sock.settimeout(10)
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(block)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed
        try:
            status, _, body = _read_response(sock, timeout=5)
        except (ConnectionResetError, IndexError):
            pytest.fail(f"no 413 came back after {sent} bytes")
    assert status == 413, body
    # What the client managed to push: the cap plus what the kernel's socket buffers hold.
    assert sent < SMALL_CAP + 16 * 1024 * 1024, sent


def test_asgi_cuts_a_chunked_body_at_the_cap_and_reads_no_further(settings):
    """In-process, exactly: the application reads the cap's worth and not one chunk more."""
    from webtesting import asgi_call

    settings.VOXELSEARCH = {**settings.VOXELSEARCH, "MAX_REQUEST_BYTES": 10_000}
    sent = asgi_call("POST", "/accounts/login/", [(b"content-type", b"application/x-www-form-urlencoded")],
                     chunks=[b"x" * 1000] * 100)
    assert sent.status == 413
    assert sent.body_bytes_read == 11_000  # the chunk that passed the cap, then nothing
    declared = asgi_call("POST", "/accounts/login/", [(b"content-length", b"100000")], chunks=[b"x" * 1000] * 100)
    assert (declared.status, declared.body_bytes_read) == (413, 0)


# --- F7: a raw path that climbs out of /static/ ----------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/static/../webapp/settings.py", "/static/../x", "/static/css/../../../etc/passwd", "/static/%2e%2e/x"])
def test_a_raw_static_path_out_of_the_static_folder_is_a_404_not_a_500(capped_server, path):
    status, _, body = _request(capped_server, "GET", path)
    assert status in (400, 404), body[:300]
    assert b"SECRET_KEY" not in body and b"root:" not in body


# --- WebSocket keep-alive under uvicorn -------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_test_websocket_client_answers_uvicorns_pings_and_a_silent_one_is_dropped(
    capped_server, make_user, make_project, session_cookie, ws_connect,
):
    """uvicorn pings each socket and closes one that does not answer: the tests' MiniWebSocket
    answers while it reads, so a socket that reads stays open across many ping periods."""
    from webtesting import WebSocketClosed

    user = make_user()
    project = make_project(user)
    dataset = Dataset.objects.create(project=project, name="D", source="files")
    url = f"ws://127.0.0.1:{capped_server}/ws/datasets/{dataset.pk}/"
    reading = ws_connect(url, cookies=session_cookie(user))
    assert reading.recv_json()["type"] == "status"
    silent = ws_connect(url, cookies=session_cookie(user))
    # Five ping periods with no text frame: reading answers each ping as it comes (short socket
    # timeouts fall between frames), silent reads nothing.
    reading.sock.settimeout(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            reading.recv()
            pytest.fail("no text frame was sent")
        except TimeoutError:
            continue
    from webapp.datasets.events import dataset_changed

    dataset.transition(Dataset.Status.IMPORTING)
    dataset_changed(dataset)
    reading.sock.settimeout(10)
    assert reading.recv_json()["dataset"]["status"] == "importing"  # still open, still live

    silent.sock.settimeout(10)
    with pytest.raises((WebSocketClosed, OSError)) as dropped:  # it never answered: uvicorn gave up on it
        while True:
            silent.recv()
    if isinstance(dropped.value, WebSocketClosed) and dropped.value.code is not None:
        assert dropped.value.code == 1011  # "keepalive ping timeout"


# --- resumable uploads (tus) -------------------------------------------------------------------------

def _tus_headers(session: dict[str, str], **extra) -> dict[str, str]:
    return {"Cookie": f"sessionid={session['sessionid']}; csrftoken={CSRF}", "X-CSRFToken": CSRF,
            "Tus-Resumable": "1.0.0", **extra}


def _metadata(**fields) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def _create(port, session, length: int, filename: str) -> str:
    status, headers, body = _request(port, "POST", "/uploads/tus/", _tus_headers(
        session, **{"Upload-Length": str(length), "Upload-Metadata": _metadata(filename=filename, filetype="application/gzip")}))
    assert status == 201, body
    return headers["location"]


def _offset(port, session, location) -> int:
    status, headers, _ = _request(port, "HEAD", location, _tus_headers(session))
    assert status == 200
    return int(headers["upload-offset"])


def _patch(port, session, location, offset: int, data: bytes) -> tuple[int, dict, bytes]:
    return _request(port, "PATCH", location, _tus_headers(
        session, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}), data)


def _dropped_patch(port, session, location, offset: int, data: bytes, declared: int) -> None:
    """A PATCH whose connection drops after ``data`` of a declared ``declared`` bytes."""
    headers = _tus_headers(session, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                                       "Content-Length": str(declared)})
    sock = _connect(port)
    sock.sendall((f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                  + "\r\n").encode() + data)
    time.sleep(0.3)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST: a dropped link
    sock.close()


@pytest.mark.django_db(transaction=True)
def test_a_tus_upload_interrupted_then_resumed_yields_the_right_bytes_and_creates_a_dataset(
    capped_server, make_user, make_project, session_cookie, tmp_path, media_root,
):
    user = make_user()
    project = make_project(user)
    session = session_cookie(user)
    image, label = corpus.good_pair(tmp_path, "case1")
    locations = {}
    for path in (image, label):
        data = path.read_bytes()
        location = _create(capped_server, session, len(data), path.name)
        assert _offset(capped_server, session, location) == 0
        half = len(data) // 2
        status, headers, _ = _patch(capped_server, session, location, 0, data[:half])
        assert status == 204 and int(headers["upload-offset"]) == half
        # The link drops in the middle of the second chunk: the server keeps what it had.
        _dropped_patch(capped_server, session, location, half, data[half:half + 100], declared=len(data) - half)
        resume_at = _offset(capped_server, session, location)
        assert resume_at == half
        # A chunk sent at a wrong offset is refused (the client must ask HEAD first).
        assert _patch(capped_server, session, location, 0, data[:10])[0] == 409
        status, headers, _ = _patch(capped_server, session, location, resume_at, data[resume_at:])
        assert status == 204 and int(headers["upload-offset"]) == len(data)
        locations[path.name] = location

    status, _, body = _request(capped_server, "POST", f"/uploads/datasets/{project.pk}/", {
        **_tus_headers(session), "Content-Type": "application/json"},
        json.dumps({"uploads": list(locations.values()), "labels": "1: a, 2: b", "name": "Resumed"}).encode())
    assert status == 201, body
    dataset = Dataset.objects.get(pk=json.loads(body)["id"])
    assert dataset.name == "Resumed" and sorted(dataset.upload_names) == sorted(locations)
    for path in (image, label):
        stored = dataset.upload_dir / path.name
        assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
    # The uploads were consumed: nothing is left to resume, no bytes are kept twice.
    for location in locations.values():
        assert _request(capped_server, "HEAD", location, _tus_headers(session))[0] == 404
    assert not list((media_root / "uploads" / "tus" / str(user.pk)).iterdir())


@pytest.mark.django_db(transaction=True)
def test_tus_uploads_are_signed_in_per_user_capped_and_spoken_by_the_protocol(capped_server, make_user, session_cookie):
    owner, other = make_user(), make_user()
    mine, theirs = session_cookie(owner), session_cookie(other)
    status, headers, _ = _request(capped_server, "OPTIONS", "/uploads/tus/", _tus_headers(mine))
    assert status == 204 and headers["tus-version"] == "1.0.0"
    assert set(headers["tus-extension"].split(",")) >= {"creation", "termination"}
    assert int(headers["tus-max-size"]) == UPLOAD_CAP

    location = _create(capped_server, mine, 1000, "a.nii.gz")
    assert _request(capped_server, "HEAD", location, _tus_headers(theirs))[0] == 404  # not theirs to see
    assert _patch(capped_server, theirs, location, 0, b"x" * 10)[0] == 404
    anonymous = {k: v for k, v in _tus_headers(mine).items() if k != "Cookie"}
    assert _request(capped_server, "HEAD", location, anonymous)[0] in (401, 403)
    assert _request(capped_server, "HEAD", location, {**_tus_headers(mine), "Tus-Resumable": "0.2.2"})[0] == 412
    status, _, _ = _request(capped_server, "PATCH", location, _tus_headers(
        mine, **{"Upload-Offset": "0", "Content-Type": "text/plain"}), b"abc")
    assert status == 415
    assert _patch(capped_server, mine, location, 0, b"x" * 1001)[0] == 413  # more than its declared length
    assert _offset(capped_server, mine, location) == 0

    # One upload over the cap, and more unfinished uploads than the cap allows, are refused.
    status, _, body = _request(capped_server, "POST", "/uploads/tus/", _tus_headers(mine, **{"Upload-Length": str(UPLOAD_CAP + 1)}))
    assert status == 413 and b"limit" in body
    big = _create(capped_server, mine, UPLOAD_CAP - 1000, "b.nii.gz")
    status, _, body = _request(capped_server, "POST", "/uploads/tus/", _tus_headers(mine, **{"Upload-Length": "2000"}))
    assert status == 413 and b"unfinished" in body
    assert _request(capped_server, "DELETE", big, _tus_headers(mine))[0] == 204  # termination frees the room
    assert _request(capped_server, "HEAD", big, _tus_headers(mine))[0] == 404
    _create(capped_server, mine, 2000, "c.nii.gz")
    for bad in ("filename", "filename !!!notbase64"):
        status, _, _ = _request(capped_server, "POST", "/uploads/tus/", _tus_headers(mine, **{"Upload-Length": "5", "Upload-Metadata": bad + ",x y"}))
        assert status == 400


@pytest.mark.django_db
def test_expired_uploads_are_removed_and_fresh_ones_kept(settings, media_root):
    from webapp.common import tus

    old = tus.create_upload(user_id=1, length=10, metadata={})
    fresh = tus.create_upload(user_id=1, length=10, metadata={})
    past = time.time() - 2 * tus.expiry_seconds()
    for name in ("info.json", "data"):
        os.utime(old.folder / name, (past, past))
    assert tus.remove_expired_uploads() == 1
    assert not old.folder.exists() and fresh.folder.exists()


@pytest.mark.django_db
def test_a_dataset_from_unfinished_or_foreign_uploads_is_refused(client, make_user, make_project):
    from webapp.common import tus

    user, other = make_user(), make_user()
    project = make_project(user)
    client.force_login(user)
    unfinished = tus.create_upload(user_id=user.pk, length=10, metadata={"filename": "a.nii.gz"})
    foreign = tus.create_upload(user_id=other.pk, length=0, metadata={"filename": "b.nii.gz"})
    url = f"/uploads/datasets/{project.pk}/"
    for ids, words in (([unfinished.upload_id], "not finished"), ([foreign.upload_id], "not yours"), ([], "list of upload ids")):
        response = client.post(url, {"uploads": ids}, content_type="application/json")
        assert response.status_code == 400 and words in response.content.decode()
    assert client.post(url, "[1", content_type="application/json").status_code == 400
    assert Dataset.objects.count() == 0
