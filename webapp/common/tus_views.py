"""HTTP side of resumable uploads: the tus 1.0 protocol and the step that turns finished uploads
into a dataset. Storage and rules are in :mod:`webapp.common.tus`.

Routes (``webapp.common.tus_urls``, under ``/uploads/``):

* ``OPTIONS /uploads/tus/``: what the server supports;
* ``POST /uploads/tus/`` (creation): ``Upload-Length`` and ``Upload-Metadata`` -> ``201`` and
  ``Location``;
* ``HEAD /uploads/tus/<id>``: ``Upload-Offset`` (where to resume) and ``Upload-Length``;
* ``PATCH /uploads/tus/<id>``: a chunk at ``Upload-Offset``
  (``Content-Type: application/offset+octet-stream``) -> ``204`` and the new offset;
* ``DELETE /uploads/tus/<id>`` (termination);
* ``POST /uploads/datasets/<project id>/``: JSON ``{"uploads": [ids], "name", "labels",
  "modality", "description"}`` -> the dataset, created by ``datasets.services.dataset_upload``.

Signed-in users only (session and CSRF token, as every other form of the site); each sees only
their own uploads. A chunk's body goes to disk as Django receives it: memory stays flat.
"""
from __future__ import annotations

import json
import logging
from contextlib import ExitStack

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import tus
from .bodylimit import max_upload_bytes

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"


def _tus_response(status: int, *, headers: dict | None = None, message: str = "") -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _expires(upload: tus.Upload) -> str:
    from django.utils.http import http_date

    return http_date(upload.expires_at)


def _refusal(request) -> HttpResponse | None:
    """The answer for a request that may not go on (not signed in, wrong protocol version)."""
    if not request.user.is_authenticated:
        return _tus_response(401, message="Sign in to upload.")
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        return _tus_response(412, headers={"Tus-Version": TUS_VERSION},
                             message=f"This server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}.")
    return None


def _int_header(request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise tus.UploadError(400, f"{name} must be a whole number of bytes, not {value[:30]!r}.")
    return int(value)


def upload_collection(request):
    """``OPTIONS`` (capabilities) and ``POST`` (creation) on ``/uploads/tus/``."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    if request.method == "OPTIONS":
        return _tus_response(204, headers={"Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
                                           "Tus-Max-Size": str(max_upload_bytes())})
    if request.method != "POST":
        return _tus_response(405, headers={"Allow": "OPTIONS, POST"}, message="Use POST to create an upload.")
    try:
        if request.headers.get("Upload-Defer-Length"):
            raise tus.UploadError(400, "Upload-Defer-Length is not supported: send Upload-Length.")
        length = _int_header(request, "Upload-Length")
        if length is None:
            raise tus.UploadError(400, "Send Upload-Length: the file's size in bytes.")
        upload = tus.create_upload(user_id=request.user.pk, length=length,
                                   metadata=tus.parse_metadata(request.headers.get("Upload-Metadata", "")))
    except tus.UploadError as error:
        return _tus_response(error.status, message=error.message)
    location = reverse("uploads:tus-upload", args=[upload.upload_id])
    return _tus_response(201, headers={"Location": location, "Upload-Expires": _expires(upload)})


def upload_resource(request, upload_id: str):
    """``HEAD`` (offset), ``PATCH`` (a chunk) and ``DELETE`` (termination) on one upload."""
    refused = _refusal(request)
    if refused is not None:
        return refused
    if request.method == "OPTIONS":
        return _tus_response(204, headers={"Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS})
    upload = tus.get_upload(request.user.pk, upload_id)
    if upload is None:
        return _tus_response(404, message="No such upload (it finished, expired or was cancelled).")
    if request.method == "HEAD":
        return _tus_response(200, headers={"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
                                           "Upload-Expires": _expires(upload)})
    if request.method == "DELETE":
        tus.delete_upload(upload)
        return _tus_response(204)
    if request.method != "PATCH":
        return _tus_response(405, headers={"Allow": "HEAD, PATCH, DELETE, OPTIONS"}, message="Not a tus method.")
    if request.content_type != "application/offset+octet-stream":
        return _tus_response(415, message="A chunk is sent with Content-Type: application/offset+octet-stream.")
    try:
        offset = _int_header(request, "Upload-Offset")
        if offset is None:
            raise tus.UploadError(400, "Send Upload-Offset: where this chunk starts.")
        new_offset = tus.append(upload, offset=offset, stream=request, declared_length=_int_header(request, "Content-Length"))
    except tus.UploadError as error:
        return _tus_response(error.status, headers={"Upload-Offset": str(upload.offset)}, message=error.message)
    return _tus_response(204, headers={"Upload-Offset": str(new_offset), "Upload-Expires": _expires(upload)})


# --- finished uploads -> a dataset ----------------------------------------------------------------

class FinishedUpload:
    """A finished resumable upload in the shape ``datasets.services.dataset_upload`` takes: a
    ``name`` and, like Django's ``TemporaryUploadedFile``, a ``temporary_file_path()`` that the
    service moves (not copies) into the dataset's folder."""

    def __init__(self, upload: tus.Upload):
        self.upload = upload
        self.name = upload.filename
        self.size = upload.length

    def temporary_file_path(self) -> str:
        return str(self.upload.data_path)


def _errors(error: ValidationError) -> dict:
    if hasattr(error, "message_dict"):
        return {field: [str(m) for m in messages] for field, messages in error.message_dict.items()}
    return {"non_field_errors": [str(m) for m in error.messages]}


@require_POST
def dataset_from_uploads(request, project_pk: int):
    """Create a dataset from the user's finished uploads (JSON body, see the module docstring)."""
    from django.http import Http404

    from webapp.datasets import services
    from webapp.projects.access import require_write
    from webapp.projects.selectors import project_get

    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Sign in to upload."}, status=401)
    try:
        project = project_get(user=request.user, pk=project_pk)
    except Http404:
        return JsonResponse({"detail": "No such project."}, status=404)
    try:  # viewers are refused before their body is read
        require_write(request.user, project)
    except PermissionDenied as denied:
        return JsonResponse({"detail": str(denied)}, status=403)
    try:
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "Send a JSON object."}, status=400)
    ids = data.get("uploads")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return JsonResponse({"uploads": ["Name the finished uploads: a list of upload ids."]}, status=400)
    uploads = []
    for upload_id in ids:
        upload = tus.get_upload(request.user.pk, upload_id.rsplit("/", 1)[-1])
        if upload is None:
            return JsonResponse({"uploads": [f"No upload {upload_id[:40]!r} (it expired, or is not yours)."]}, status=400)
        if not upload.complete:
            return JsonResponse({"uploads": [f"{upload.filename or upload_id}: the upload is not finished "
                                             f"({upload.offset} of {upload.length} bytes)."]}, status=400)
        uploads.append(upload)
    fields = {key: data.get(key) or "" for key in ("name", "labels", "modality", "description")}
    if not all(isinstance(v, str) for v in fields.values()):
        return JsonResponse({"detail": "name, labels, modality and description are text."}, status=400)
    try:
        with ExitStack() as held:  # the same uploads sent twice at once: one request takes them
            for upload in uploads:
                held.enter_context(tus.locked(upload))
            if not all(u.complete for u in uploads):
                return JsonResponse({"uploads": ["These uploads were just used by another request."]}, status=409)
            dataset = services.dataset_upload(project=project, actor=request.user,
                                              files=[FinishedUpload(u) for u in uploads], **fields)
    except tus.UploadError as error:
        return JsonResponse({"uploads": [error.message]}, status=409)
    except ValidationError as error:
        return JsonResponse(_errors(error), status=400)
    except PermissionDenied as denied:
        return JsonResponse({"detail": str(denied) or "You may not add datasets to this project."}, status=403)
    for upload in uploads:  # their data was moved into the dataset; the folders are left
        tus.delete_upload(upload)
    return JsonResponse({"id": dataset.pk, "url": reverse("datasets:detail", args=[dataset.pk])}, status=201)
