"""Upload handling: every uploaded file streams to a temporary file on disk.

``CappedTemporaryFileUploadHandler`` is Django's ``TemporaryFileUploadHandler`` plus a hard cap on
the total request body (``VOXELSEARCH["MAX_UPLOAD_BYTES"]``), enforced both from the declared
Content-Length and while the body streams in (for chunked requests without a length).
"""
from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


def max_upload_bytes() -> int:
    return int(settings.VOXELSEARCH["MAX_UPLOAD_BYTES"])


class UploadTooLarge(Exception):
    pass


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        if content_length and content_length > max_upload_bytes():
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received = getattr(self, "received", 0) + len(raw_data)
        if self.received > max_upload_bytes():
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
