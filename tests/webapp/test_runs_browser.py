"""In headless Chromium: the launch form is built from the method's JSON Schema, shows the memory
estimate against the budget (and refuses what does not fit), starts a tiny search, and the run
page draws curve points and the architecture graph live from the WebSocket."""
from __future__ import annotations

import pytest
from browsertesting import CHROMIUM_ARGS, find_chromium
from test_runs_support import make_demo_dataset

from webapp.runs.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 300_000  # a tiny search on a busy 2-core machine


@pytest.fixture
def chromium():
    """Debian's chromium with Playwright and the run pages' npm modules (tests/browsertesting.py)."""
    return find_chromium()


def test_launch_form_estimate_and_live_dashboard(chromium, make_user, make_project, tmp_path, celery_worker,
                                                  asgi_live_server, session_cookie, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM reads below are plain
    # blocking reads of the test database, not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    owner = make_user("researcher")
    project = make_project(owner)
    dataset = make_demo_dataset(project, owner, tmp_path)
    cookie = session_cookie(owner)
    base = asgi_live_server.url
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_cookies([{"name": "sessionid", "value": cookie["sessionid"], "url": base}])
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/datasets/{dataset.pk}/search/")
            # The inputs come from the schema: bounds from the dataclass metadata.
            page.select_option("#launch-method", "dints")  # the first method listed is another one
            layers = page.locator("#cfg-num_layers")
            layers.wait_for()
            assert layers.get_attribute("min") == "1" and layers.get_attribute("max") == "24"
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function("() => document.querySelector('#cfg-num_layers').value === '3'")
            for name, value in {"search_steps": "8", "warmup_steps": "1", "weight_only_steps": "1",
                                "snapshot_every": "2", "validate_every": "4", "checkpoint_every": "4"}.items():
                page.fill(f"#cfg-{name}", value)
            page.fill("#cfg-lr_milestones", "")
            # A budget that cannot hold it: the numbers are shown and the form refuses.
            page.fill("#launch-budget", "0.001")
            page.wait_for_function("() => document.querySelector('#estimate-text').dataset.fits === 'false'")
            assert "budget 1 MB: does not fit" in page.inner_text("#estimate-text") and page.is_disabled("#launch-submit")
            page.fill("#launch-budget", "8")
            page.wait_for_function("() => document.querySelector('#estimate-text').dataset.fits === 'true'")
            # A value out of range is refused by the engine with the field named.
            page.fill("#cfg-num_layers", "99")
            page.wait_for_selector("[data-field=num_layers].invalid")
            page.fill("#cfg-num_layers", "3")
            page.wait_for_function("() => document.querySelector('#estimate-text').dataset.fits === 'true'")
            page.screenshot(path=str(tmp_path / "launch.png"), full_page=True)
            page.click("#launch-submit")
            page.wait_for_url("**/runs/*/")
            run = Run.objects.get()
            assert run.resolved_config["search_steps"] == 8 and run.preset == "tiny"
            # Live: curve points and the graph arrive, the graph changes, the run succeeds.
            steps_seen = set()
            page.wait_for_selector("#arch-graph svg path.edge", state="attached")
            page.wait_for_function("() => Number(document.getElementById('chart-losses')?.dataset.points) > 0")
            page.wait_for_selector("#run-status[data-status=succeeded]")
            steps_seen.add(page.get_attribute("#arch-graph", "data-step"))
            assert page.get_attribute("#arch-graph", "data-step") in ("final", "8")
            assert int(page.get_attribute("#arch-graph", "data-edges")) > 0
            assert Number_points(page, "#chart-dice") > 0 and Number_points(page, "#chart-lrs") > 0
            events = Run.objects.get().events.count()
            page.wait_for_function(f"() => document.body.dataset.lastSeq === '{events}'")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            # The final architecture page draws the decoded genotype.
            page.goto(f"{base}/runs/{run.pk}/architecture/")
            page.wait_for_selector("#arch-graph svg circle.node", state="attached")
            assert "—" not in page.inner_text(".fig-params")
        finally:
            browser.close()
    assert not errors, errors


def Number_points(page, selector: str) -> int:  # noqa: N802 - reads like the JS it mirrors
    return int(page.get_attribute(selector, "data-points") or 0)
