"""Issue 14, item 7: the Content-Security-Policy and Permissions-Policy headers, and templates that
need nothing the policy forbids (no inline scripts, no inline event handlers)."""
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


def test_templates_have_no_inline_event_handlers():
    """The policy allows no inline code ('unsafe-hashes' is not in it), so an onsubmit/onclick
    attribute would silently stop working: confirmations use data-confirm (js/confirm.js)."""
    assert "'unsafe-hashes'" not in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"]
    handlers = []
    for template in TEMPLATES.rglob("*.html"):
        for handler in re.findall(r"\son[a-z]+=\"([^\"]*)\"", template.read_text()):
            handlers.append(f"{template.relative_to(TEMPLATES)}: {handler}")
    assert not handlers, handlers

