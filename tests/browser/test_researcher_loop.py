"""The whole loop in a real browser, as a researcher does it on the README's demo.

Sign in as the demo user (the demo project and dataset come from ``seed_demo``: the engine's
synthetic data through the real folder import), open the dataset, launch a tiny DiNTS search from
the schema-built form, watch loss/learning-rate points and the architecture graph arrive live over
the WebSocket, open the final architecture, retrain it, follow the registered model to a
prediction of a volume this test writes (another shape, an oblique affine), see the segmentation
drawn over it in NiiVue (pixels of the overlay colours in a screenshot of the canvas), and
download the label map: same shape and affine as the upload.

Everything is real: uvicorn, a Celery worker on both queues, Redis, the database, the engine.
Headless Debian chromium (Playwright, sync API, no ``playwright install``). Without chromium, the
playwright package or the NiiVue module the test is skipped, except with
VOXELSEARCH_REQUIRE_BROWSER=1 (CI), where it fails. Set VOXELSEARCH_SCREENSHOT_DIR to keep the
screenshots. About 2-3 minutes on 2 CPU cores.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from browsertesting import CHROMIUM_ARGS, overlay_pixels
from predictiontesting import input_volume

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]

# The search as a researcher would shrink it on a CPU: the tiny preset with few steps, but enough
# of them (and a snapshot every step) to see the curves and the graph grow while it runs.
SEARCH_SETTINGS = {
    "warmup_steps": "1", "weight_only_steps": "1", "search_steps": "12",
    "snapshot_every": "1", "validate_every": "4", "checkpoint_every": "0", "lr_milestones": "",
}
SEARCH_STEPS = 1 + 1 + 12
RETRAIN_SETTINGS = {"warmup_steps": "1", "steps": "3", "lr_milestones": "", "validate_every": "0", "checkpoint_every": "0"}

PAGE_TIMEOUT_MS = 30_000
SEARCH_TIMEOUT_S = 180
RETRAIN_TIMEOUT_S = 180
PAGE_LAG_S = 20  # the page's REST fallback polls every 5 s
PREDICT_TIMEOUT_MS = 120_000

# Records every WebSocket message the page receives (time, kind, event seq/type), so the test can
# tell events that arrived live from those replayed on connect.
WS_RECORDER = """
(() => {
  const Native = window.WebSocket;
  window.__wsLog = [];
  class Recording extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (m) => {
        try {
          const msg = JSON.parse(m.data);
          window.__wsLog.push({ t: performance.now(), kind: msg.kind,
            seq: msg.event ? msg.event.seq : null, type: msg.event ? msg.event.type : null,
            status: msg.run ? msg.run.status : null });
        } catch (e) { window.__wsLog.push({ t: performance.now(), kind: 'unparsed' }); }
      });
      this.addEventListener('close', (e) => window.__wsLog.push({ t: performance.now(), kind: 'closed', code: e.code }));
    }
  }
  window.WebSocket = Recording;
})();
"""

LIVE_STATE = """() => {
  const n = (sel, attr) => Number((document.querySelector(sel) || {dataset: {}}).dataset[attr] || 0);
  const graph = document.getElementById('arch-graph');
  return {
    status: document.getElementById('run-status').dataset.status,
    lastSeq: Number(document.body.dataset.lastSeq || 0),
    losses: n('#chart-losses', 'points'),
    lrs: n('#chart-lrs', 'points'),
    dice: n('#chart-dice', 'points'),
    lossSeries: JSON.parse((document.getElementById('chart-losses') || {dataset: {}}).dataset.series || '[]').length,
    graphStep: graph ? (graph.dataset.step || null) : null,
    edges: graph ? graph.querySelectorAll('svg path.edge').length : 0,
    nodes: graph ? graph.querySelectorAll('svg circle.node').length : 0,
    weights: graph ? [...graph.querySelectorAll('svg path.edge')].map((e) => e.dataset.weight).join(' ') : '',
    progress: document.getElementById('run-progress-text').textContent,
    eta: document.getElementById('run-eta').textContent,
    estimate: document.getElementById('memory-estimate').textContent,
    connection: document.getElementById('run-connection').textContent,
    error: document.getElementById('run-error').textContent.trim(),
  };
}"""


def _seed_demo(tmp_path: Path) -> dict:
    """The README's demo through the real import path (``seed_demo``): user, project, dataset."""
    from django.core.management import call_command

    from webapp.datasets.management.commands import seed_demo
    from webapp.datasets.models import Dataset

    call_command("seed_demo", cases=4, stdout=open(os.devnull, "w"))
    dataset = Dataset.objects.get(name=seed_demo.DEMO_DATASET)
    assert dataset.status == Dataset.Status.READY, dataset.problems
    return {"username": seed_demo.DEMO_USERNAME, "password": seed_demo.DEMO_PASSWORD,
            "project": seed_demo.DEMO_PROJECT, "dataset": seed_demo.DEMO_DATASET, "dataset_id": dataset.pk}


def _fill_schema_form(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"#cfg-{name}", value)
    # The estimate follows the inputs (debounced): wait for a verdict on these values.
    page.wait_for_function("() => document.querySelector('#estimate-text').dataset.fits === 'true'")
    assert page.is_enabled("#launch-submit"), page.inner_text("#launch-errors")


FINAL = ("succeeded", "failed", "cancelled")


def _watch_run(page, base: str, timeout_s: float, shots: Path, name: str) -> list[dict]:
    """Sample the run page every 250 ms until it shows the run final; returns the samples.

    Fails early when the server has had the run final for PAGE_LAG_S and the page still does
    not show it (the page must learn it from its socket, or from its polling fallback)."""
    samples = []
    run_id = page.get_attribute("#run-title", "data-run-id")
    deadline = time.monotonic() + timeout_s
    server_final_at = None
    next_check = time.monotonic() + 2
    while True:
        state = page.evaluate(LIVE_STATE)
        state["t"] = time.monotonic()
        samples.append(state)
        if state["status"] in FINAL:
            return samples
        if state["t"] > next_check:
            next_check = state["t"] + 2
            server = page.request.get(f"{base}/api/runs/{run_id}/").json()
            if server.get("status") in FINAL and server_final_at is None:
                server_final_at = state["t"]
            if server_final_at is not None and state["t"] - server_final_at > PAGE_LAG_S:
                page.screenshot(path=str(shots / f"{name}-stale.png"), full_page=True)
                raise AssertionError(f"{name}: the run is {server['status']} on the server for {PAGE_LAG_S}s but the "
                                     f"run page still shows {state}; socket log {page.evaluate('window.__wsLog')}")
        if state["t"] > deadline:
            page.screenshot(path=str(shots / f"{name}-timeout.png"), full_page=True)
            raise AssertionError(f"{name}: not final within {timeout_s}s; last state {state}")
        page.wait_for_timeout(250)


def _assert_streamed(page, samples: list[dict], base: str, what: str) -> list[dict]:
    """The run page got its events over the WebSocket (replay, then live), each once and in
    order, as many as the server stored; the socket stayed up. Returns the socket log."""
    log = page.evaluate("window.__wsLog")
    closed = [m for m in log if m["kind"] == "closed"]
    assert not closed, f"{what}: the run's WebSocket was closed by the server {closed} (see the ASGI server log)"
    assert any(m["kind"] == "replayed" for m in log), f"{what}: the socket never finished its replay: {log}"
    assert any(s["connection"] == "live" for s in samples), f"{what}: the page never showed the socket live"
    seqs = [m["seq"] for m in log if m["kind"] == "event"]
    assert seqs == sorted(set(seqs)), f"{what}: events out of order or twice over the socket: {seqs}"
    run_id = page.get_attribute("#run-title", "data-run-id")
    stored = page.request.get(f"{base}/api/runs/{run_id}/events?after=0").json()["events"]
    assert seqs == [e["seq"] for e in stored], f"{what}: socket gave {seqs}, the API stores {[e['seq'] for e in stored]}"
    assert samples[-1]["lastSeq"] == stored[-1]["seq"], (what, samples[-1], stored[-1])
    return log


def test_researcher_searches_retrains_and_predicts_in_the_browser(
    chromium_with_viewer, asgi_live_server, celery_worker, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    # Database work and files first: Playwright's sync API runs an event loop in this thread.
    demo = _seed_demo(tmp_path)
    from nasengine.api import make_demo_data

    scan_source = make_demo_data(tmp_path / "scan-source", n_cases=1, n_test=1, seed=11)
    scan = input_volume(scan_source, tmp_path / "new_scan.nii.gz", crop=(44, 40, 30))
    source = nib.load(str(scan))
    assert not np.allclose(source.affine, np.diag(np.diag(source.affine)))  # oblique, not identity

    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url
    console_errors: list[str] = []
    timings: dict[str, float] = {}
    t0 = time.monotonic()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_with_viewer, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        context.add_init_script(WS_RECORDER)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("console", lambda msg: console_errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: console_errors.append(f"{page.url}: {exc}"))
        try:
            # --- sign in, open the demo dataset -------------------------------------------------
            page.goto(base + "/")
            expect(page.locator("#login-form")).to_be_visible()
            page.fill("#id_username", demo["username"])
            page.fill("#id_password", demo["password"])
            page.click("#sign-in")
            page.get_by_role("link", name=demo["project"]).click()
            page.get_by_role("link", name=demo["dataset"]).click()
            expect(page.locator("#dataset-status")).to_have_attribute("data-status", "ready")

            # --- launch a tiny DiNTS search from the schema-built form --------------------------
            page.click("#start-search")
            expect(page.locator("#launch-form")).to_be_visible()
            page.select_option("#launch-method", "dints")  # the first method listed is another one
            expect(page.locator("#launch-method")).to_have_value("dints")
            page.locator("#cfg-num_layers").wait_for()
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function("() => document.querySelector('#cfg-num_layers').value === '3'")  # tiny's values
            _fill_schema_form(page, SEARCH_SETTINGS)
            page.fill("#launch-name", "Demo search")
            estimate = page.inner_text("#estimate-text")
            assert re.search(r"Needs [\d.]+ [KMGT]?B to search, budget [\d.]+ [KMGT]?B: fits", estimate), estimate
            page.screenshot(path=str(shots / "1-launch-form.png"), full_page=True)
            page.click("#launch-submit")

            # --- the run page: curves and graph arrive live -------------------------------------
            page.wait_for_url(re.compile(r".*/runs/\d+/$"))
            search_url = page.url
            timings["search queued"] = time.monotonic() - t0
            samples = _watch_run(page, base, SEARCH_TIMEOUT_S, shots, "search")
            timings["search final"] = time.monotonic() - t0
            final = samples[-1]
            page.screenshot(path=str(shots / "2-search-dashboard.png"), full_page=True)
            assert final["status"] == "succeeded", f"the search ended {final['status']}: {final['error']}"

            running = [s for s in samples if s["status"] == "running"]
            loss_counts = [s["losses"] for s in running if s["losses"]]
            graph_steps = [s["graphStep"] for s in running if s["graphStep"]]
            # Points grew on screen while the run was running, and the graph was redrawn from
            # newer snapshots (not one picture drawn after the fact).
            assert len(set(loss_counts)) >= 2 and loss_counts == sorted(loss_counts), loss_counts
            assert len(set(graph_steps)) >= 2, graph_steps
            # ...and the edge probabilities drawn changed as the architecture was learned.
            assert len({s["weights"] for s in running if s["weights"]}) >= 2, "the graph never changed while running"
            assert any(s["edges"] > 0 for s in running), "no graph edges drawn while running"
            assert any(re.search(r"s/step", s["eta"]) for s in running), [s["eta"] for s in running]
            assert re.fullmatch(r"[\d.]+ [KMGT]?B", final["estimate"].strip()), final["estimate"]
            # Every stored event came over the socket once, in order; those after the replay
            # came live, steps and snapshots among them.
            log = _assert_streamed(page, samples, base, "search")
            replayed_at = next(i for i, m in enumerate(log) if m["kind"] == "replayed")
            live = [m for m in log[replayed_at + 1:] if m["kind"] == "event"]
            assert sum(m["type"] == "step" for m in live) >= 2, log
            assert sum(m["type"] == "architecture" for m in live) >= 2, log
            # At the end: all curves and the final graph drawn.
            assert final["losses"] >= SEARCH_STEPS and final["lrs"] >= SEARCH_STEPS and final["dice"] > 0, final
            expect(page.locator("#arch-graph")).to_have_attribute("data-step", "final")
            assert final["edges"] > 0 and final["nodes"] > 0, final
            expect(page.locator("#run-progress-text")).to_have_text("finished")

            # --- the final architecture, then retrain it ---------------------------------------
            expect(page.locator("#architecture-link")).to_be_visible()
            expect(page.locator("#retrain-run")).to_be_visible()
            page.click("#architecture-link")
            page.wait_for_url(re.compile(r".*/runs/\d+/architecture/$"))
            expect(page.locator("#arch-graph svg path.edge").first).to_be_attached()
            assert page.locator("#arch-graph svg circle.node").count() > 0
            for figure in (".fig-params", ".fig-flops", ".fig-memory"):
                assert page.inner_text(figure).strip() not in ("", "—"), figure
            page.screenshot(path=str(shots / "3-architecture.png"), full_page=True)
            page.get_by_role("link", name="Retrain", exact=True).click()

            expect(page.locator("#launch-form")).to_be_visible()
            page.locator("#cfg-steps").wait_for()
            page.select_option("#launch-preset", "tiny")
            page.wait_for_function("() => document.querySelector('#cfg-steps').value === '4'")  # tiny's values
            _fill_schema_form(page, RETRAIN_SETTINGS)
            page.fill("#launch-name", "Demo model")
            estimate = page.inner_text("#estimate-text")
            assert re.search(r"Needs [\d.]+ [KMGT]?B to retrain, budget [\d.]+ [KMGT]?B: fits", estimate), estimate
            page.screenshot(path=str(shots / "4-retrain-form.png"), full_page=True)
            page.click("#launch-submit")
            page.wait_for_url(lambda url: re.match(r".*/runs/\d+/$", url) is not None and url != search_url)
            timings["retrain queued"] = time.monotonic() - t0
            samples = _watch_run(page, base, RETRAIN_TIMEOUT_S, shots, "retrain")
            timings["retrain final"] = time.monotonic() - t0
            final = samples[-1]
            page.screenshot(path=str(shots / "5-retrain-dashboard.png"), full_page=True)
            assert final["status"] == "succeeded", f"the retraining ended {final['status']}: {final['error']}"
            assert final["losses"] > 0, final
            _assert_streamed(page, samples, base, "retrain")  # "streamed the same way"

            # --- the registered model, predict a new volume -------------------------------------
            model_link = page.locator("#model-link")
            expect(model_link).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            model_link.click()
            page.wait_for_url(re.compile(r".*/models/\d+/$"))
            expect(page.locator("#model-name")).to_have_text("Demo model")
            model_id = page.get_attribute("#model-name", "data-model-id")
            page.screenshot(path=str(shots / "6-model.png"), full_page=True)
            page.click("#predict-with-model")
            expect(page.locator("#predict-form")).to_be_visible()
            expect(page.locator("#predict-title")).to_have_attribute("data-model-id", model_id)
            page.set_input_files("#id_files", [str(scan)])
            page.click("#predict-submit")

            page.wait_for_url(re.compile(r".*/predictions/\d+/$"))
            expect(page.locator("#prediction-status")).to_have_attribute("data-status", "succeeded", timeout=PREDICT_TIMEOUT_MS)
            timings["prediction final"] = time.monotonic() - t0
            canvas = page.locator("#viewer-canvas")
            expect(canvas).to_have_attribute("data-ready", "true", timeout=PREDICT_TIMEOUT_MS)
            expect(page.locator("#volume-table")).to_contain_text("organ")
            colours = page.locator("#viewer-legend li").evaluate_all(
                "els => els.map(e => ({value: Number(e.dataset.labelValue), rgb: e.dataset.rgb.split(',').map(Number)}))")
            colours = [c for c in colours if c["value"] != 0]
            assert colours, "no label colours in the legend"
            drawn = None
            for _ in range(40):  # the viewer draws asynchronously after data-ready
                drawn = overlay_pixels(canvas.screenshot(), colours)
                if sum(drawn.values()) > 200:
                    break
                page.wait_for_timeout(250)
            page.screenshot(path=str(shots / "7-prediction-viewer.png"), full_page=True)
            canvas.screenshot(path=str(shots / "7-prediction-canvas.png"))
            assert sum(drawn.values()) > 200, f"no overlay colour drawn in the viewer: {drawn}"

            with page.expect_download() as info:
                page.click("#download-label")
            saved = tmp_path / "downloaded_label.nii.gz"
            info.value.save_as(saved)
            assert info.value.suggested_filename == "new_scan_label.nii.gz", info.value.suggested_filename
            timings["done"] = time.monotonic() - t0
        except BaseException:
            try:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
            except Exception:
                pass
            print(f"\nscreenshots in {shots}\n--- worker log tail ---\n{celery_worker.output()[-3000:]}"
                  f"\n--- ASGI server log tail ---\n{asgi_live_server.log.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            browser.close()

    errors = [e for e in console_errors if "WebSocket" not in e]
    assert not errors, f"errors in the browser console: {errors}"
    label = nib.load(str(saved))
    assert label.shape == source.shape, (label.shape, source.shape)
    assert np.allclose(label.affine, source.affine, atol=1e-5), (label.affine, source.affine)
    values = set(np.unique(np.asarray(label.dataobj)).tolist())
    assert values <= {0, 1, 2} and values & {1, 2}, values
    print(f"\noverlay pixels {drawn}; label values {sorted(values)}; timings (s from sign-in) "
          + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + f"; screenshots in {shots}")
