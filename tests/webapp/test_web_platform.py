"""The platform: settings, Celery wiring, schema, live ASGI server (HTTP, static, WebSocket), seed_demo."""
from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from webapp.datasets.models import Dataset


def test_celery_configuration():
    from webapp.celery import app

    conf = app.conf
    assert {q.name for q in conf.task_queues} == {"default", "gpu"}
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "default"
    # Redis redelivers an unacknowledged (acks-late) task after the visibility timeout, to a
    # second worker while the first still runs it: the timeout must outlast a long search.
    from django.conf import settings

    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 24 * 3600
    route = app.amqp.router.route({}, "webapp.datasets.tasks.import_dataset")
    assert route["queue"].name == "default"
    assert app.amqp.router.route({}, "webapp.runs.tasks.run_search")["queue"].name == "gpu"
    import webapp.datasets.tasks  # noqa: F401  (the worker autodiscovers it)

    assert "webapp.datasets.tasks.import_dataset" in app.tasks


def test_settings_defaults_come_from_the_environment(monkeypatch):
    import importlib

    import webapp.settings as s

    for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    fresh = importlib.reload(s)
    try:
        assert fresh.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
        assert fresh.DATABASES["default"]["NAME"].endswith("var/voxelsearch.sqlite3")
        assert fresh.REDIS_URL == "redis://127.0.0.1:6379/0"
        assert str(fresh.MEDIA_ROOT).endswith("var/media")
        assert fresh.DEBUG is False and fresh.SECRET_KEY
        monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5433/vs")
        monkeypatch.setenv("REDIS_URL", "redis://cache.example:6380/2")
        monkeypatch.setenv("ALLOWED_HOSTS", "a.example,b.example")
        monkeypatch.setenv("VOXELSEARCH_MAX_VOXELS", "1234")
        # The development key is public: with hosts beyond this machine, SECRET_KEY is required.
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
            importlib.reload(s)
        monkeypatch.setenv("SECRET_KEY", "a-long-random-value-for-this-test-0123456789")
        fresh = importlib.reload(s)
        assert fresh.SECRET_KEY == "a-long-random-value-for-this-test-0123456789"
        assert fresh.DATABASES["default"]["HOST"] == "db.example" and fresh.DATABASES["default"]["PORT"] == 5433
        assert fresh.CELERY_BROKER_URL == "redis://cache.example:6380/2"
        assert fresh.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] == "redis://cache.example:6380/2"
        assert fresh.ALLOWED_HOSTS == ["a.example", "b.example"]
        assert fresh.VOXELSEARCH["MAX_VOXELS_PER_VOLUME"] == 1234
    finally:
        monkeypatch.undo()
        importlib.reload(s)


@pytest.mark.django_db
def test_openapi_schema_and_docs_page(client, make_user):
    client.force_login(make_user())
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    for path in ("/api/projects/", "/api/projects/{id}/members/", "/api/projects/{id}/datasets/", "/api/datasets/{id}/cases/"):
        assert path in schema["paths"], path
    upload = schema["paths"]["/api/projects/{id}/datasets/"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    page = client.get("/api/docs/").content.decode()
    assert "api-docs.js" in page and "cdn" not in page.lower()


@pytest.mark.django_db
def test_pages_use_no_cdn(client, make_user, make_project):
    user = make_user()
    project = make_project(user)
    client.force_login(user)
    for url in ("/projects/", f"/projects/{project.pk}/", f"/projects/{project.pk}/datasets/upload/", "/accounts/token/"):
        html = client.get(url).content.decode()
        external = re.findall(r'(?:src|href)="(https?:)?//', html)
        assert not external, (url, external)


def test_seed_demo_is_idempotent(django_db_blocker, django_db_setup, db):
    call_command("seed_demo", cases=2)
    call_command("seed_demo", cases=2)
    from django.contrib.auth import authenticate

    user = authenticate(username="demo", password="demo-voxels")
    assert user is not None
    datasets = Dataset.objects.filter(project__memberships__user=user)
    assert datasets.count() == 1
    dataset = datasets.get()
    assert dataset.status == "ready" and dataset.num_cases == 2 and dataset.fingerprint
    assert all(c.preview_file.is_file() for c in dataset.cases.all())
    assert user.projects.count() == 1


# --- the live ASGI server ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_live_server_signs_in_serves_static_and_pushes_status_over_websocket(
    asgi_live_server, make_user, make_project, session_cookie, ws_connect
):
    base = asgi_live_server.url
    user = make_user("live", password="live-pass-123")
    outsider = make_user("stranger")
    project = make_project(user, name="Live")
    dataset = Dataset.objects.create(project=project, name="D", source="files")

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
    data = urllib.parse.urlencode({"username": "live", "password": "live-pass-123", "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"})
    page = opener.open(request)
    assert page.geturl().endswith("/projects/")
    assert "Live" in page.read().decode()

    css = urllib.request.urlopen(f"{base}/static/css/voxelsearch.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]
    js = urllib.request.urlopen(f"{base}/static/js/upload.js")
    assert js.status == 200 and "javascript" in js.headers["Content-Type"]
    with pytest.raises(urllib.error.HTTPError) as anon:
        urllib.request.urlopen(f"{base}/api/projects/")
    assert anon.value.code == 401

    ws = ws_connect(f"{asgi_live_server.ws_url}/ws/datasets/{dataset.pk}/", cookies=session_cookie(user))
    first = ws.recv_json()
    assert first == {"type": "status", "dataset": {"id": dataset.pk, "status": "uploaded", "num_cases": 0, "problems": []}}
    # A status change in another process (here: the test) reaches the browser through Redis.
    from webapp.datasets.events import dataset_changed

    dataset.transition(Dataset.Status.IMPORTING)
    dataset_changed(dataset)
    assert ws.recv_json()["dataset"]["status"] == "importing"

    from webtesting import WebSocketClosed

    stranger = ws_connect(f"{asgi_live_server.ws_url}/ws/datasets/{dataset.pk}/", cookies=session_cookie(outsider))
    with pytest.raises(WebSocketClosed) as closed:
        stranger.recv_json()
    assert closed.value.code == 4403
