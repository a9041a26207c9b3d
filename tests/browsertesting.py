"""Helpers shared by the browser tests: finding Debian's chromium, its launch arguments, and
measuring a label overlay in a screenshot.

A plain module (not conftest.py) so tests can import it by name, as tests/webtesting.py.
"""
from __future__ import annotations

import io
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
VIEWER_MODULE = Path(__file__).resolve().parents[1] / "frontend" / "static" / "vendor" / "niivue" / "niivue.js"


def skip_or_fail(problem: str):
    """Skip a browser test that cannot run here, except in CI (VOXELSEARCH_REQUIRE_BROWSER=1)."""
    if os.environ.get("VOXELSEARCH_REQUIRE_BROWSER") == "1":
        pytest.fail(problem)
    pytest.skip(problem)


def find_chromium(*, need_viewer: bool = False) -> str:
    """The chromium binary, with Playwright importable (and NiiVue built when ``need_viewer``)."""
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
    return path


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
