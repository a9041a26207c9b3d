"""Upload handling: every uploaded file streams to a temporary file on disk.

The request body is capped at ``VOXELSEARCH["MAX_UPLOAD_BYTES"]`` twice:

* ``webapp.common.bodylimit.RequestBodyLimit`` (ASGI, in front of Django): Django's ASGI handler
  copies the whole body to a temporary file before any view runs, so a body over its route's
  cap is answered 413 there, from its Content-Length before a byte is read, or (chunked,
  without a length) as soon as it passes the cap;
* ``CappedTemporaryFileUploadHandler`` (any server, WSGI included): Django's
  ``TemporaryFileUploadHandler`` plus the same cap while the multipart body is parsed.
"""
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

from .bodylimit import max_upload_bytes

__all__ = ["CappedTemporaryFileUploadHandler", "max_upload_bytes", "upload_too_large"]


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
