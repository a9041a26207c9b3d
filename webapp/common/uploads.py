"""Upload handling: every uploaded file streams to a temporary file on disk.

The request body is capped at ``VOXELSEARCH["MAX_UPLOAD_BYTES"]`` twice:

* ``RequestBodyLimit`` (ASGI): Django's ASGI handler copies the whole body to a temporary file
  before any view runs, so a body over the cap is answered 413 here, from its Content-Length
  before a byte is read, or (chunked, without a length) as soon as it passes the cap;
* ``CappedTemporaryFileUploadHandler`` (any server, WSGI included): Django's
  ``TemporaryFileUploadHandler`` plus the same cap while the multipart body is parsed.
"""
import json

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat


def max_upload_bytes() -> int:
    return int(settings.VOXELSEARCH["MAX_UPLOAD_BYTES"])


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Stops storing files once the body is over the cap and flags the request (see
    ``upload_too_large``). StopUpload is raised only while file data streams in, where Django's
    parser catches it: raised earlier (``handle_raw_input``) it would escape as a server error."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        if content_length and content_length > max_upload_bytes():
            self.request.upload_too_large = True
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received = getattr(self, "received", 0) + len(raw_data)
        if getattr(self.request, "upload_too_large", False) or self.received > max_upload_bytes():
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


def upload_too_large(request) -> bool:
    """True when the request body is (or was found while streaming to be) over the cap."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > max_upload_bytes() or getattr(request, "upload_too_large", False)


class RequestBodyLimit:
    """ASGI middleware: answer 413 to an HTTP request whose body is over the upload cap."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = max_upload_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
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
                    # The app stops reading at the disconnect and sends nothing (Django raises
                    # RequestAborted); the client gets the 413.
                    refused = True
                    await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, capped_receive, send)


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": f"The upload is larger than the limit of {filesizeformat(limit)}."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
