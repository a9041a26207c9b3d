"""Streamed downloads of a model's bundle (.zip) and exported network."""
import zipfile
from collections.abc import Iterator

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.utils.text import slugify

from .models import TrainedModel
from .selectors import bundle_files


class _Pipe:
    """A write-only file object whose written bytes are collected for a streaming response."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self):
        pass

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _zip_stream(model: TrainedModel, prefix: str) -> Iterator[bytes]:
    pipe = _Pipe()
    root = model.bundle_path
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for rel in bundle_files(model):
            with open(root / rel, "rb") as src, archive.open(f"{prefix}/{rel.as_posix()}", "w", force_zip64=True) as dst:
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
                    yield pipe.drain()
            yield pipe.drain()
    yield pipe.drain()


def _stem(model: TrainedModel) -> str:
    return slugify(model.name) or f"model-{model.pk}"


def bundle_zip_response(model: TrainedModel) -> StreamingHttpResponse:
    if not bundle_files(model):
        raise Http404("The model's files are missing.")
    stem = _stem(model)
    response = StreamingHttpResponse(_zip_stream(model, stem), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{stem}-bundle.zip"'
    return response


def network_response(model: TrainedModel) -> FileResponse:
    path = model.network_file
    if path is None:
        raise Http404("This model has no exported network (the export did not succeed).")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"{_stem(model)}{path.suffix}",
                        content_type="application/octet-stream")
