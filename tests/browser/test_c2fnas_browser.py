"""A C2FNAS search from the browser, on the Celery candidate executor, to a prediction.

Sign in as the demo user, launch a tiny C2FNAS search from the launch form, and on the run page
see the candidate table fill in live (rows appear while the run is running, each with its level
path, Dice, time and the Celery worker that trained it), the clusters' shares (Fig. 4) and the
fine stage's ranking; the run succeeds and its final genotype is drawn by the U-shape graph
view. Then retrain that genotype from the page and predict a volume with the registered model.

Everything is real: uvicorn, the session's Celery worker on the default and gpu queues (the
orchestration and the candidates are its tasks), Redis, the database, the engine, headless
chromium. Skipped without chromium/playwright except with VOXELSEARCH_REQUIRE_BROWSER=1 (CI).
About 2 minutes on 2 CPU cores.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from browsertesting import CHROMIUM_ARGS
from predictiontesting import input_volume
from test_researcher_loop import RETRAIN_SETTINGS, WS_RECORDER, _fill_schema_form, _seed_demo, _watch_run

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGE_TIMEOUT_MS = 30_000
SEARCH_TIMEOUT_S = 240
RETRAIN_TIMEOUT_S = 180
PREDICT_TIMEOUT_MS = 120_000
# The tiny preset with a few more candidates (each still 3 steps), so rows arrive over time.
SEARCH_SETTINGS = {"candidates": "4", "fine_candidates": "3"}

PANEL_STATE = """() => {
  const rows = [...document.querySelectorAll('#c2fnas-candidates tbody tr')];
  return {
    status: document.getElementById('run-status').dataset.status,
    rows: rows.length,
    finished: rows.filter((r) => r.dataset.state === 'finished').length,
    paths: document.querySelectorAll('#c2fnas-candidates svg.topology-path polyline').length,
    workers: rows.map((r) => r.querySelector('[data-col="worker"]').textContent),
    dice: rows.map((r) => r.querySelector('[data-col="dice"]').textContent),
    shares: Number(document.getElementById('c2fnas-shares').dataset.points || 0),
    fine: document.querySelectorAll('#c2fnas-fine li').length,
    summary: document.getElementById('c2fnas-summary').textContent,
  };
}"""


def test_c2fnas_searches_live_in_the_browser_and_its_genotype_retrains_and_predicts(
        chromium, asgi_live_server, celery_worker, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    demo = _seed_demo(tmp_path)
    from nasengine.api import make_demo_data

    scan_source = make_demo_data(tmp_path / "scan-source", n_cases=1, n_test=1, seed=11)
    scan = input_volume(scan_source, tmp_path / "new_scan.nii.gz", crop=(44, 40, 30))
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url
    page_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(WS_RECORDER)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("pageerror", lambda exc: page_errors.append(f"{page.url}: {exc}"))
        try:
            page.goto(base + "/")
            page.fill("#id_username", demo["username"])
            page.fill("#id_password", demo["password"])
            page.click("#sign-in")
            page.get_by_role("link", name=demo["project"]).click()
            page.get_by_role("link", name=demo["dataset"]).click()
            expect(page.locator("#dataset-status")).to_have_attribute("data-status", "ready")

            page.click("#start-search")
            expect(page.locator("#launch-form")).to_be_visible()
            page.locator("#launch-method option").first.wait_for(state="attached")
            page.select_option("#launch-method", "c2fnas")
            page.locator("#cfg-fine_candidates").wait_for(state="attached")
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function("() => document.querySelector('#cfg-num_cells').value === '5'")  # tiny's values
            _fill_schema_form(page, SEARCH_SETTINGS)
            page.fill("#launch-name", "C2FNAS in the browser")
            page.click("#launch-submit")
            page.wait_for_url(re.compile(r".*/runs/\d+/$"))
            search_url = page.url
            run_id = page.get_attribute("#run-title", "data-run-id")
            expect(page.locator("#c2fnas-card")).to_be_visible()

            # sample the panel while the run runs (and the dashboard's own state with it)
            panel: list[dict] = []
            deadline = time.monotonic() + SEARCH_TIMEOUT_S
            while True:
                state = page.evaluate(PANEL_STATE)
                panel.append(state)
                if state["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(200)
            final = _watch_run(page, base, 30, shots, "c2fnas")[-1]
            page.screenshot(path=str(shots / "c2fnas-dashboard.png"), full_page=True)
            assert final["status"] == "succeeded", f"the search ended {final['status']}: {final['error']}"

            running = [s for s in panel if s["status"] == "running"]
            finished_live = sorted({s["finished"] for s in running})
            assert any(n >= 1 for n in finished_live), f"no candidate row finished while the run ran: {panel[-5:]}"
            assert len(finished_live) >= 2, f"the rows did not fill in over time: {finished_live}"
            end = page.evaluate(PANEL_STATE)
            assert end["rows"] == end["finished"] == int(SEARCH_SETTINGS["candidates"]), end
            assert end["paths"] == end["rows"], end
            assert all(re.fullmatch(r"[01]\.\d{3}", d) for d in end["dice"]), end
            assert all(w.startswith("test-") and "@" in w for w in end["workers"]), end  # the Celery worker's name
            assert end["shares"] == int(SEARCH_SETTINGS["candidates"]), end
            assert end["fine"] == int(SEARCH_SETTINGS["fine_candidates"]), end

            graph = page.locator("#arch-graph")
            expect(graph).to_have_attribute("data-step", "final")
            expect(graph).to_have_attribute("data-kind", "ushape")
            assert int(graph.get_attribute("data-nodes") or 0) > 0
            # the relay's bookkeeping (``origin``) is no chart; the candidates' curves are
            assert page.locator("#chart-board [id^='chart-origin'], #chart-board [id^='chart-stream']").count() == 0
            expect(page.locator("#chart-losses")).to_be_attached()
            stored = page.request.get(f"{base}/api/runs/{run_id}/events?after=0").json()["events"]
            assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))

            # --- retrain the genotype, predict with the model ------------------------------------
            expect(page.locator("#retrain-run")).to_be_visible()
            page.click("#retrain-run")
            expect(page.locator("#launch-form")).to_be_visible()
            page.locator("#cfg-steps").wait_for()
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function("() => document.querySelector('#cfg-steps').value === '4'")
            _fill_schema_form(page, RETRAIN_SETTINGS)
            page.fill("#launch-name", "C2FNAS model")
            page.click("#launch-submit")
            page.wait_for_url(lambda url: re.match(r".*/runs/\d+/$", url) is not None and url != search_url)
            final = _watch_run(page, base, RETRAIN_TIMEOUT_S, shots, "c2fnas-retrain")[-1]
            assert final["status"] == "succeeded", f"the retraining ended {final['status']}: {final['error']}"
            expect(page.locator("#c2fnas-card")).to_have_count(0)  # a retraining run has no search panels
            page.locator("#model-link").click()
            page.wait_for_url(re.compile(r".*/models/\d+/$"))
            page.click("#predict-with-model")
            expect(page.locator("#predict-form")).to_be_visible()
            page.set_input_files("#id_files", [str(scan)])
            page.click("#predict-submit")
            page.wait_for_url(re.compile(r".*/predictions/\d+/$"))
            expect(page.locator("#prediction-status")).to_have_attribute("data-status", "succeeded",
                                                                         timeout=PREDICT_TIMEOUT_MS)
            page.screenshot(path=str(shots / "c2fnas-prediction.png"), full_page=True)
        except BaseException:
            try:
                page.screenshot(path=str(shots / "c2fnas-failure.png"), full_page=True)
            except Exception:
                pass
            print(f"\nscreenshots in {shots}\n--- worker log tail ---\n{celery_worker.output()[-3000:]}")
            raise
        finally:
            browser.close()
    assert not page_errors, f"errors on the page: {page_errors}"
