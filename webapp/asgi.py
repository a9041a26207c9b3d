"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Run with ``daphne webapp.asgi:application`` (or ``manage.py runserver``, which uses daphne).
Static files are served by the same process when ``SERVE_STATIC`` is on (the default), so the
embedded set-up needs no other web server and no CDN. Request bodies over the upload cap are
refused before Django copies them to disk (``RequestBodyLimit``).
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from webapp.common.uploads import RequestBodyLimit  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(http_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
