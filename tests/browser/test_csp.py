"""Issue 14, item 7: every main page works under the Content-Security-Policy, in a real browser.

Headless chromium (Playwright) against the real ASGI server: the projects, project, dataset, run,
architecture, model, launch, upload (Uppy), API docs, invitations and prediction viewer (NiiVue)
pages load with no ``securitypolicyviolation`` event and no CSP console error, the viewer's canvas
renders the volume, and the data-confirm forms (js/confirm.js) still ask before deleting.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from browsertesting import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "csp-in-a-browser-1"
TIMEOUT_MS = 90_000
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _prediction(model):
    from predictiontesting import make_prediction, write_volume

    prediction = make_prediction(model)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    write_volume(prediction.input_file, np.full((16, 16, 16), 100.0, np.float32), affine, identifying=False)
    label = np.zeros((16, 16, 16), np.uint8)
    label[5:11, 5:11, 5:11] = 1
    write_volume(prediction.output_file, label, affine, identifying=False)
    prediction.attention_maps = []
    prediction.save()
    return prediction


def test_main_pages_work_under_the_csp(chromium_with_viewer, asgi_live_server, make_user, make_project, media_root, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webapp"))  # the runs' row factories
    from test_runs_support import make_demo_dataset, make_model, make_run, tiny_genotype

    user = make_user("csp-reader", password=PASSWORD, is_staff=True, is_superuser=True)  # admin pages too
    project = make_project(user, name="CSP project")
    dataset = make_demo_dataset(project, user, tmp_path, n_cases=2, shape=(16, 16, 16))
    run = make_run(project, dataset, status="succeeded", genotype=tiny_genotype())
    model = make_model(project, dataset, media_root)
    prediction = _prediction(model)
    live_run = _run_with_steps(project, dataset, make_run)
    base = asgi_live_server.url
    pages = [
        "/projects/", f"/projects/{project.pk}/", f"/datasets/{dataset.pk}/", f"/projects/{project.pk}/datasets/upload/",
        f"/datasets/{dataset.pk}/search/", f"/runs/{run.pk}/", f"/runs/{run.pk}/architecture/", f"/models/{model.pk}/",
        "/api/docs/", "/projects/invitations/", "/accounts/token/", "/datasets/", "/models/", "/predictions/",
        f"/projects/{project.pk}/runs/", f"/projects/{project.pk}/compare/", f"/datasets/{dataset.pk}/leaderboard/",
        f"/models/{model.pk}/predict/", "/admin/", "/admin/projects/project/", f"/admin/projects/project/{project.pk}/change/",
        "/admin/projects/invitation/",
    ]
    problems: dict[str, list[str]] = {}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_with_viewer, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        console: list[str] = []
        try:
            page.set_default_timeout(30_000)
            page.add_init_script(COLLECT_VIOLATIONS)
            page.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
            response = page.goto(base + "/accounts/login/")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert "camera=()" in response.headers["permissions-policy"]
            page.fill("#id_username", "csp-reader")
            page.fill("#id_password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_url("**/projects/")

            def check(url: str) -> None:
                console.clear()
                response = page.goto(base + url)
                assert response.status == 200, (url, response.status)
                page.wait_for_load_state("networkidle")
                found = page.evaluate("window.__cspViolations") + list(console)
                if found:
                    problems[url] = found

            for url in pages:
                check(url)

            # The run page's charts (uPlot) draw the stored steps, over the live socket.
            check(f"/runs/{live_run.pk}/")
            page.wait_for_function("() => Number(document.getElementById('chart-losses')?.dataset.points) === 3", timeout=TIMEOUT_MS)
            assert page.locator("#chart-board canvas").count() > 0
            found = page.evaluate("window.__cspViolations") + list(console)
            if found:
                problems[f"/runs/{live_run.pk}/ (charts)"] = found

            # The viewer: NiiVue draws the volume under the policy.
            check(f"/predictions/{prediction.pk}/")
            canvas = page.locator("#viewer-canvas")
            expect(canvas).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
            pixels = np.frombuffer(_png_rgb(canvas.screenshot()), dtype=np.uint8)
            assert pixels.max() > 40, "the viewer canvas stayed black"
            found = page.evaluate("window.__cspViolations") + list(console)
            if found:
                problems[f"/predictions/{prediction.pk}/ (after rendering)"] = found

            # The delete buttons' data-confirm question runs (js/confirm.js); dismissing keeps the model.
            dialogs: list[str] = []
            page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{base}/models/{model.pk}/")
            page.click("#delete-model")
            assert dialogs == ["Unregister this model?"]
            assert page.evaluate("window.__cspViolations") == []

            # The policy has teeth and the collector hears it: an injected inline script is refused.
            page.evaluate("document.body.appendChild(Object.assign(document.createElement('script'), {textContent: 'window.__ran = 1'}))")
            page.wait_for_function("() => window.__cspViolations.length > 0")
            assert page.evaluate("window.__ran") is None
            assert "script-src" in page.evaluate("window.__cspViolations")[0]
        finally:
            browser.close()
    assert not problems, problems
    from webapp.mlmodels.models import TrainedModel

    assert TrainedModel.objects.filter(pk=model.pk).exists()


def _run_with_steps(project, dataset, make_run):
    """A running search with three step events stored through the web app's own sink."""
    import time

    from webapp.runs.events import RunEventSink
    from webapp.runs.models import Run

    run = make_run(project, dataset)
    run.transition("running")
    Run.objects.filter(pk=run.pk).update(claim_token="csp-test-worker")
    sink = RunEventSink(run.pk, "csp-test-worker")
    sink({"seq": 1, "type": "run_started", "time": time.time(), "phase": "search", "total_steps": 3, "device": "cpu"})
    for step in (1, 2, 3):
        sink({"seq": step + 1, "type": "step", "time": time.time(), "step": step, "total_steps": 3, "phase": "search",
              "losses": {"seg": 1.0 / step}, "seconds": 0.5})
    return run


def _png_rgb(png: bytes) -> bytes:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()
