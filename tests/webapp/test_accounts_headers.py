"""Issue 14, item 7: the Content-Security-Policy and Permissions-Policy headers, and templates that
need nothing the policy forbids (no inline scripts; only the hashed onsubmit handlers)."""
import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "frontend" / "templates"


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/accounts/login/", "/projects/", "/api/projects/"])
def test_every_response_has_both_policies(client, make_user, url):
    client.force_login(make_user())
    response = client.get(url)
    csp = _directives(response["Content-Security-Policy"])
    assert csp["script-src"][0] == "'self'" and "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"] and csp["form-action"] == ["'self'"]
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "usb=()", "payment=()"):
        assert feature in policy


def test_templates_have_no_inline_scripts():
    inline = []
    for template in TEMPLATES.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            if "src=" not in tag:
                inline.append(f"{template.relative_to(TEMPLATES)}: {tag}")
    assert not inline, inline


def test_every_inline_event_handler_is_allowed_by_its_hash():
    """'unsafe-hashes' allows exactly the handlers whose hashes the policy lists: a new or changed
    onsubmit/onclick would silently stop working, so it must be hashed (or moved to a script)."""
    allowed = set(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"])
    missing = []
    for template in TEMPLATES.rglob("*.html"):
        for handler in re.findall(r"\son[a-z]+=\"([^\"]*)\"", template.read_text()):
            digest = base64.b64encode(hashlib.sha256(handler.encode()).digest()).decode()
            if f"'sha256-{digest}'" not in allowed:
                missing.append(f"{template.relative_to(TEMPLATES)}: {handler}")
    assert not missing, missing
