"""Static files served by the ASGI application itself (``SERVE_STATIC``, the default).

Django's ``ASGIStaticFilesHandler`` turns a missing file into a 404 but lets the
``SuspiciousFileOperation`` of a path that climbs out of the static folders
(``GET /static/../settings.py``, sent raw) escape as a server error (issue 14, F7). Here such
a path is a plain 404: there is no static file by that name.
"""
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404


class SafeASGIStaticFilesHandler(ASGIStaticFilesHandler):
    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousFileOperation:
            raise Http404("No static file has that name.") from None
