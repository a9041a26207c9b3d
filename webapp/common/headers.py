"""Response headers that limit what a page may do (issue 14, item 7).

The Content-Security-Policy itself is django-csp's (``CONTENT_SECURITY_POLICY`` in settings);
this module adds the Permissions-Policy, which django-csp does not send.
"""
from django.http import HttpRequest, HttpResponse

#: Browser features no VoxelSearch page uses are switched off for the page and any frame;
#: fullscreen stays available to the page itself (the viewer may go fullscreen).
PERMISSIONS_POLICY = ", ".join([
    "accelerometer=()",
    "autoplay=()",
    "browsing-topics=()",
    "camera=()",
    "display-capture=()",
    "fullscreen=(self)",
    "geolocation=()",
    "gyroscope=()",
    "magnetometer=()",
    "microphone=()",
    "midi=()",
    "payment=()",
    "publickey-credentials-get=()",
    "screen-wake-lock=()",
    "serial=()",
    "usb=()",
    "xr-spatial-tracking=()",
])


class PermissionsPolicyMiddleware:
    """Adds ``Permissions-Policy`` to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
