"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Run with ``uvicorn webapp.asgi:application`` (scripts/run-demo, docker/web.sh and the tests
do): uvicorn hands request bodies to the application as they arrive, with flow control, where
daphne held whole multipart bodies in memory several times over (issue 14, F1). ``manage.py
runserver`` still uses daphne, for development. Static files are served by the same process
when ``SERVE_STATIC`` is on (the default), so the embedded set-up needs no other web server and
no CDN. Request bodies over their route's cap are refused before Django copies them to disk
(``webapp.common.bodylimit.RequestBodyLimit``).
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from webapp.common.bodylimit import RequestBodyLimit  # noqa: E402
from webapp.routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if settings.SERVE_STATIC:
    from webapp.common.staticfiles import SafeASGIStaticFilesHandler

    http_app = SafeASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(http_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
