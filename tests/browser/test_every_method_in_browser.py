"""Every registered search method can be searched from the browser, end to end.

For each method of ``nasengine.methods.registry``: sign in as the demo user (``seed_demo``), open
the ready demo dataset, open the launch form, pick the method and its ``tiny`` preset, launch, and
on the run page wait until the run succeeds; then check what the page shows: the final
architecture graph drawn with nodes and edges, and at least one chart with data points.

Where a method's tiny preset is long for a CPU, fewer steps are set through the form's own fields
(as a researcher would). Everything is real: uvicorn, a Celery worker, Redis, the database, the
engine, headless Debian chromium (Playwright, sync API). Reuses the helpers of
test_researcher_loop.py. Skipped without chromium/playwright except with
VOXELSEARCH_REQUIRE_BROWSER=1 (CI), where it fails.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from browsertesting import CHROMIUM_ARGS
from test_researcher_loop import _fill_schema_form, _seed_demo, _watch_run

import nasengine.methods

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

METHODS = sorted(nasengine.methods.registry)
PAGE_TIMEOUT_MS = 30_000
SEARCH_TIMEOUT_S = 240

# Shorter schedules, through the form fields, for the methods whose tiny preset runs tens of steps.
FEWER_STEPS = {
    "warmup_steps": "1", "weight_only_steps": "1", "search_steps": "4",
    "snapshot_every": "1", "validate_every": "4", "checkpoint_every": "0", "lr_milestones": "",
}
FORM_SETTINGS = {"dints": FEWER_STEPS, "dast": FEWER_STEPS}

CHARTS = """() => [...document.querySelectorAll('#chart-board [id^="chart-"][data-points]')]
  .map((c) => ({id: c.id, points: Number(c.dataset.points)}))"""


def _schema_keys(name: str) -> set[str]:
    method = nasengine.methods.registry[name]
    return set(method.schema().get("properties", {}))


def _own_field(name: str) -> str | None:
    """A setting only this method's form has (to know its form, not the previous one, is drawn)."""
    others = set().union(*(_schema_keys(m) for m in METHODS if m != name))
    own = sorted(_schema_keys(name) - others)
    return own[0] if own else None


def _tiny_scalars(name: str) -> dict[str, str]:
    """The tiny preset's integer settings as the form shows them (to know tiny's values are in)."""
    tiny = nasengine.methods.registry[name].presets["tiny"]
    return {k: str(v) for k, v in tiny.items() if isinstance(v, int) and not isinstance(v, bool)
            and k in _schema_keys(name)}


@pytest.mark.parametrize("method", METHODS)
def test_method_searches_from_the_browser(method, chromium, asgi_live_server, celery_worker, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    demo = _seed_demo(tmp_path)
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url
    own_field = _own_field(method)
    tiny = _tiny_scalars(method)
    assert tiny, f"{method}: its tiny preset has no integer setting to recognise it by"
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("pageerror", lambda exc: console_errors.append(f"{page.url}: {exc}"))
        try:
            page.goto(base + "/")
            expect(page.locator("#login-form")).to_be_visible()
            page.fill("#id_username", demo["username"])
            page.fill("#id_password", demo["password"])
            page.click("#sign-in")
            page.get_by_role("link", name=demo["project"]).click()
            page.get_by_role("link", name=demo["dataset"]).click()
            expect(page.locator("#dataset-status")).to_have_attribute("data-status", "ready")

            page.click("#start-search")
            expect(page.locator("#launch-form")).to_be_visible()
            page.locator("#launch-method option").first.wait_for(state="attached")
            page.select_option("#launch-method", method)
            expect(page.locator("#launch-method")).to_have_value(method)
            if own_field:
                page.locator(f"#cfg-{own_field}").wait_for(state="attached")
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function(
                "(want) => Object.entries(want).every(([k, v]) => (document.querySelector('#cfg-' + k) || {}).value === v)",
                arg=tiny)
            _fill_schema_form(page, FORM_SETTINGS.get(method, {}))
            page.fill("#launch-name", f"Every method: {method}")
            page.click("#launch-submit")

            page.wait_for_url(re.compile(r".*/runs/\d+/$"))
            run_id = page.get_attribute("#run-title", "data-run-id")
            samples = _watch_run(page, base, SEARCH_TIMEOUT_S, shots, method)
            final = samples[-1]
            page.screenshot(path=str(shots / f"{method}-dashboard.png"), full_page=True)
            assert final["status"] == "succeeded", f"{method}: the search ended {final['status']}: {final['error']}"

            run = page.request.get(f"{base}/api/runs/{run_id}/").json()
            assert (run["method"], run["preset"], run["kind"]) == (method, "tiny", "search"), run

            graph = page.locator("#arch-graph")
            expect(graph).to_have_attribute("data-step", "final")
            expect(graph.locator("svg circle.node").first).to_be_attached()
            expect(graph.locator("svg path.edge").first).to_be_attached()
            assert int(graph.get_attribute("data-nodes") or 0) > 0, f"{method}: no graph nodes: {final}"
            assert int(graph.get_attribute("data-edges") or 0) > 0, f"{method}: no graph edges: {final}"

            charts = page.evaluate(CHARTS)
            assert any(c["points"] > 0 for c in charts), f"{method}: no chart with data points: {charts}"
        except BaseException:
            try:
                page.screenshot(path=str(shots / f"{method}-failure.png"), full_page=True)
            except Exception:
                pass
            print(f"\nscreenshots in {shots}\n--- worker log tail ---\n{celery_worker.output()[-3000:]}")
            raise
        finally:
            browser.close()

    assert not console_errors, f"{method}: errors on the page: {console_errors}"
