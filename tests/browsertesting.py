"""Helpers shared by the browser tests: finding Debian's chromium, its launch arguments,
measuring a label overlay in a screenshot, and a page of the project's own ES modules served
from frontend/static without a web server (for unit-level browser tests of one module).

A plain module (not conftest.py) so tests can import it by name, as tests/webtesting.py.
"""
from __future__ import annotations

import io
import mimetypes
import os
from pathlib import Path

import numpy as np
import pytest

#: Debian's chromium as root on a machine with no network beyond localhost (FIELD-NOTES.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STATIC = Path(__file__).resolve().parents[1] / "frontend" / "static"
VIEWER_MODULE = STATIC / "vendor" / "niivue" / "niivue.js"
#: What the run pages import from npm packages (charts, graph layout), built by `npm run build`.
RUN_PAGE_MODULES = (STATIC / "vendor" / "uplot" / "uPlot.esm.js", STATIC / "vendor" / "dagre" / "dagre.js")


def skip_or_fail(problem: str):
    """Skip a browser test that cannot run here, except in CI (VOXELSEARCH_REQUIRE_BROWSER=1)."""
    if os.environ.get("VOXELSEARCH_REQUIRE_BROWSER") == "1":
        pytest.fail(problem)
    pytest.skip(problem)


def find_chromium(*, need_viewer: bool = False) -> str:
    """The chromium binary, with Playwright importable and the run pages' npm modules built
    (and NiiVue when ``need_viewer``)."""
    for candidate in (os.environ.get("VOXELSEARCH_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.access(candidate, os.X_OK):
            path = candidate
            break
    else:
        skip_or_fail("no chromium binary (/usr/bin/chromium): apt-get install chromium to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright python package is not installed (pip install -r requirements.txt)")
    if need_viewer and not VIEWER_MODULE.is_file():
        skip_or_fail(f"{VIEWER_MODULE} is missing: run `npm ci && npm run build` in frontend/ (scripts/test does it)")
    for module in RUN_PAGE_MODULES:
        if not module.is_file():
            skip_or_fail(f"{module} is missing: run `npm ci && npm run build` in frontend/ (scripts/test does it)")
    return path


#: Origin of the module pages: only Playwright's router answers it (no socket, no server).
MODULE_ORIGIN = "http://modules.voxelsearch.test"


def open_module_page(context, body_html: str, *, head_html: str = ""):
    """A page at MODULE_ORIGIN whose HTML is ``body_html`` and whose /static/ URLs are the files
    of frontend/static, so ``<script type="module">`` can import the project's modules by the
    URLs the real pages use. Returns the page, loaded."""
    html = (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<link rel='stylesheet' href='/static/css/voxelsearch.css'><link rel='stylesheet' href='/static/css/runs.css'>"
            f"{head_html}</head><body>{body_html}</body></html>")

    def serve(route):
        path = route.request.url[len(MODULE_ORIGIN):].split("?", 1)[0]
        if path in ("/", ""):
            return route.fulfill(body=html, content_type="text/html")
        file = (STATIC / path.removeprefix("/static/")).resolve()
        if not path.startswith("/static/") or STATIC not in file.parents or not file.is_file():
            return route.fulfill(status=404, body="not found")
        kind = "text/javascript" if file.suffix in (".js", ".mjs") else (mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        return route.fulfill(path=str(file), content_type=kind)

    page = context.new_page()
    page.route(f"{MODULE_ORIGIN}/**", serve)
    page.goto(f"{MODULE_ORIGIN}/")
    return page


def overlay_pixels(png: bytes, colours: list[dict], opaque: bool = False) -> dict[int, int]:
    """Pixels per class whose colour is that class's overlay colour blended over grey.

    The volume is grey (R = G = B), so a pixel whose channel differences point the way the class
    colour's do (at least 35% of them) can only come from the overlay. ``opaque``: the pixel
    must be the class colour itself (overlay opacity 1).
    """
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32).reshape(-1, 3)
    found = {}
    for c in colours:
        target = np.array(c["rgb"], dtype=np.int32)
        if opaque:
            found[c["value"]] = int((np.abs(rgb - target).max(axis=1) <= 12).sum())
            continue
        # channel differences of the pixel vs of the colour: blending with grey scales them by alpha
        dp = np.stack([rgb[:, 0] - rgb[:, 1], rgb[:, 1] - rgb[:, 2], rgb[:, 0] - rgb[:, 2]], axis=1)
        dc = np.array([target[0] - target[1], target[1] - target[2], target[0] - target[2]])
        scale = (dp @ dc) / float(dc @ dc)
        residual = np.abs(dp - scale[:, None] * dc[None, :]).max(axis=1)
        found[c["value"]] = int(((scale >= 0.35) & (residual <= 14)).sum())
    return found


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the real sign-in form (what every browser test starts with)."""
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#sign-in")
