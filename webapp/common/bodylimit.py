"""ASGI middleware: refuse a request body over its route's cap before anything stores it.

Django's ASGI handler copies a whole request body into a temporary file before any view (or
upload handler) runs, so a cap applied in Django applies only after the body has arrived
(issue 14, F2). This middleware sits in front of it:

* a declared ``Content-Length`` over the cap is answered ``413`` at once, before a byte of the
  body is read (the server then closes the connection: ``Connection: close``);
* a body without a length (chunked) is counted as it streams in and cut at the cap: the client
  gets the ``413``, the application gets ``http.disconnect`` and stops reading.

Caps are per route. Only the routes that take files get the upload cap
(``VOXELSEARCH["MAX_UPLOAD_BYTES"]``, 4 GiB by default); every other request (sign-in, the
JSON API, forms) gets the small ``VOXELSEARCH["MAX_REQUEST_BYTES"]`` (8 MiB by default), so an
anonymous client cannot make the server take in gigabytes on ``/accounts/login/``.
"""
from __future__ import annotations

import json
import re

from django.conf import settings
from django.template.defaultfilters import filesizeformat

MB = 1024 * 1024
#: The default of ``VOXELSEARCH["MAX_REQUEST_BYTES"]`` when settings do not name it.
DEFAULT_MAX_REQUEST_BYTES = 8 * MB

#: Routes whose bodies carry uploaded files, matched on the raw path. Choice: a list here rather
#: than a marker on each view, because the cap must be known before Django resolves the URL (the
#: body is stored before the resolver runs). A new upload route must be added here.
UPLOAD_ROUTES: tuple[re.Pattern, ...] = tuple(
    re.compile(pattern)
    for pattern in (
        r"^/projects/\d+/datasets/upload/?$",  # dataset upload page (plain form post)
        r"^/api/projects/\d+/datasets/?$",  # dataset upload API (the page's XHR)
        r"^/models/\d+/predict/?$",  # prediction page (volumes to segment)
        r"^/api/models/\d+/infer/?$",  # prediction API
        r"^/api/models/\d+/predictions/?$",
        r"^/uploads/tus/[0-9a-f]{32}/?$",  # resumable upload chunks (PATCH), webapp.common.tus
    )
)


def max_upload_bytes() -> int:
    return int(settings.VOXELSEARCH["MAX_UPLOAD_BYTES"])


def max_request_bytes() -> int:
    return int(settings.VOXELSEARCH.get("MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES))


def body_cap_for(path: str) -> int:
    """The largest body accepted on ``path``, in bytes."""
    if any(route.match(path) for route in UPLOAD_ROUTES):
        return max_upload_bytes()
    return max_request_bytes()


class RequestBodyLimit:
    """ASGI middleware for HTTP scopes: answers ``413`` to a body over its route's cap (see the
    module's docstring); other scopes (WebSocket, lifespan) pass through untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_cap_for(scope.get("path") or "/")
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            return await _too_large(send, limit)
        received = 0
        refused = False

        async def capped_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The app stops reading at the disconnect (Django raises RequestAborted and
                    # sends nothing); the client gets the 413.
                    refused = True
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:  # after the 413 the response is ours: nothing more may be sent
                await send(message)

        return await self.app(scope, capped_receive, guarded_send)


def _content_length(scope) -> int | None:
    """The declared body length, or None when there is none (chunked) or it is malformed
    (the server refuses a malformed one itself)."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"The request is larger than the limit of {filesizeformat(limit)} for this address."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
