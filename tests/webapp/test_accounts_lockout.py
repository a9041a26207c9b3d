"""Issue 14, F8: repeated failed sign-ins lock the username out from that address, on the sign-in
form, the token API and the admin, with a clear message (429, not a 500 or a bare 403), and the
right password is refused while the lockout lasts."""
import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-9"
LIMIT = settings.AXES_FAILURE_LIMIT


def _form(client, username, password, url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password})


def _token(client, username, password):
    return client.post("/api/auth/token/", {"username": username, "password": password}, content_type="application/json")


def test_limit_is_small_and_cooloff_long():
    assert 3 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() >= 5 * 60


def test_sign_in_form_locks_out_after_the_limit_and_refuses_the_right_password(make_user):
    make_user("alice", password=PASSWORD)
    client = Client()
    for _ in range(LIMIT - 1):
        response = _form(client, "alice", "wrong")
        assert response.status_code == 200 and b"did not match" in response.content
    locked = _form(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content and b"15 minutes" in locked.content
    assert locked["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    right = _form(client, "alice", PASSWORD)
    assert right.status_code == 429 and b"Too many failed sign-ins" in right.content
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not blocked (lockout is username + address).
    make_user("bob", password=PASSWORD)
    assert _form(Client(), "bob", PASSWORD).status_code == 302


def test_the_same_username_from_another_address_is_not_locked(make_user):
    make_user("carol", password=PASSWORD)
    for _ in range(LIMIT):
        _form(Client(), "carol", "wrong")
    assert _form(Client(REMOTE_ADDR="10.9.8.7"), "carol", PASSWORD).status_code == 302
    assert _form(Client(), "carol", PASSWORD).status_code == 429


def test_token_api_locks_out_with_a_json_message(make_user):
    make_user("dave", password=PASSWORD)
    client = Client()
    assert _token(client, "dave", PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        response = _token(client, "dave", "wrong")
        assert response.status_code == 400
    locked = _token(client, "dave", "wrong")
    assert locked.status_code == 429, locked.content
    assert locked.json()["code"] == "locked_out" and "Too many failed sign-ins" in locked.json()["detail"]
    right = _token(client, "dave", PASSWORD)
    assert right.status_code == 429 and "token" not in right.json()


def test_failures_on_the_form_and_the_api_add_up(make_user):
    make_user("erin", password=PASSWORD)
    client = Client()
    for i in range(LIMIT):
        (_form if i % 2 else _token)(client, "erin", "wrong")
    assert _token(client, "erin", PASSWORD).status_code == 429
    assert _form(client, "erin", PASSWORD).status_code == 429


def test_admin_sign_in_locks_out(make_user):
    make_user("root", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(LIMIT):
        last = _form(client, "root", "wrong", url="/admin/login/")
    assert last.status_code == 429 and b"Too many failed sign-ins" in last.content
    right = _form(client, "root", PASSWORD, url="/admin/login/")
    assert right.status_code == 429
    assert client.get("/admin/").status_code == 302  # still signed out


def test_a_success_before_the_limit_resets_the_count(make_user):
    make_user("fay", password=PASSWORD)
    client = Client()
    for _ in range(LIMIT - 1):
        _form(client, "fay", "wrong")
    assert _form(client, "fay", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(LIMIT - 1):
        _form(client, "fay", "wrong")
    assert _form(client, "fay", PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_lockout_through_the_live_asgi_server(make_user, asgi_live_server):
    """Under uvicorn the middleware runs async (axes calls the lockout callable differently)."""
    import json
    import urllib.error
    import urllib.request

    make_user("gus", password=PASSWORD)

    def token(password):
        request = urllib.request.Request(
            f"{asgi_live_server.url}/api/auth/token/", method="POST",
            data=json.dumps({"username": "gus", "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    for _ in range(LIMIT):
        status, _body = token("wrong")
    assert status == 429
    status, body = token(PASSWORD)
    assert status == 429 and "Too many failed sign-ins" in body["detail"]


@pytest.mark.django_db(transaction=True)
def test_sign_in_form_lockout_through_the_live_asgi_server(make_user, asgi_live_server):
    """The form's lockout page comes from AxesMiddleware's async path under uvicorn."""
    import re

    import requests

    make_user("hal", password=PASSWORD)
    session = requests.Session()
    url = f"{asgi_live_server.url}/accounts/login/"

    def sign_in(password):
        page = session.get(url, timeout=30).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return session.post(url, data={"username": "hal", "password": password, "csrfmiddlewaretoken": token},
                            headers={"Referer": url}, allow_redirects=False, timeout=30)

    for _ in range(LIMIT - 1):
        assert sign_in("wrong").status_code == 200
    locked = sign_in("wrong")
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert "text/html" in locked.headers["Content-Type"]
    right = sign_in(PASSWORD)
    assert right.status_code == 429 and "sessionid" not in session.cookies
