"""Test helpers shared by the web tests: a minimal WebSocket client and an in-process ASGI call.

A plain module (not conftest.py) so tests can import it by name: several conftest.py files live
in this tree, and ``from conftest import ...`` would pick whichever was imported first.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


# --- a minimal WebSocket client for tests against the live server ------------------------------
class WebSocketClosed(Exception):
    def __init__(self, code: int | None, reason: str = ""):
        self.code = code
        self.reason = reason
        super().__init__(f"closed with code {code} {reason}".strip())


class MiniWebSocket:
    """Just enough RFC 6455 for tests: connect (with cookies/origin), send and receive text frames,
    see close codes. ``recv_json()`` raises WebSocketClosed(code) when the server closes."""

    def __init__(self, url: str, *, cookies: dict[str, str] | None = None, origin: str | None = None, timeout: float = 10):
        import base64
        import secrets

        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        origin = origin or f"http://{parts.hostname}:{parts.port}"
        lines = [
            f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {origin}",
        ]
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            response += chunk
        head, _, self._buffer = response.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        if self.status != 101:
            self.sock.close()
            raise WebSocketClosed(None, f"handshake refused with HTTP {self.status}")

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WebSocketClosed(None, "connection dropped")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def recv(self) -> str:
        import struct

        while True:
            b0, b1 = self._read(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise WebSocketClosed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x1:
                return payload.decode()
            if opcode == 0x9:  # uvicorn pings every 20 s and drops a client that never answers
                self._send_frame(0xA, payload)
                continue
            # pongs and binary frames are ignored

    def recv_json(self):
        import json

        return json.loads(self.recv())

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """One masked client frame (RFC 6455 5.3) with FIN set."""
        import secrets
        import struct

        mask = secrets.token_bytes(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        try:
            self.sock.sendall(bytes([0x88, 0x82]) + b"\0\0\0\0" + b"\x03\xe8")
        except OSError:
            pass
        self.sock.close()



# --- one request through the real ASGI application (in this process) ---------------------------
@dataclass
class AsgiResult:
    status: int | None
    body: bytes
    body_bytes_read: int


def asgi_call(method: str, path: str, headers=(), chunks=(b"",)) -> AsgiResult:
    """Send one HTTP request through ``webapp.asgi.application``; the body comes in ``chunks``.
    Returns the status (None when no response was sent), the response body and how many body
    bytes the application read."""
    import asyncio

    from asgiref.sync import async_to_sync

    from webapp.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }
    pending = list(chunks)
    result = AsgiResult(status=None, body=b"", body_bytes_read=0)

    async def receive():
        if pending:
            chunk = pending.pop(0)
            result.body_bytes_read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await asyncio.Event().wait()  # the client stays connected until the response is sent

    async def send(message):
        if message["type"] == "http.response.start" and result.status is None:
            result.status = message["status"]
        elif message["type"] == "http.response.body":
            result.body += message.get("body", b"")

    async_to_sync(application)(scope, receive, send)
    return result


def reset_broker_pools() -> None:
    """Drop this process's broker connection and producer pools, so the next send connects with
    the app's current ``broker_url`` and transport options. kombu keeps its pools in global
    registries keyed by URL and options: closing a pool without clearing them (as
    ``app._pool.force_close_all()`` alone does) leaves a closed pool that every later send of
    the same URL gets ("Acquire on closed pool"), which looks like a broker outage."""
    from kombu import pools

    from webapp.celery import app

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def uploaded_file(path: Path, name: str | None = None):
    """A file on disk as the upload Django's test client posts (``name`` overrides its name)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="application/octet-stream")
