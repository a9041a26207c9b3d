"""In a real browser: a registered model's page shows its test-split evaluation (case table,
per-class summary, the inline SVG box plot with one dot per case and class), the CSV downloads,
and the page raises no console error (the inline SVG passes the content security policy).
The page is opened as soon as the model is registered, while the worker evaluates it, and
follows the job until the results are shown (js/evaluations/status.js).

Headless Debian chromium (Playwright) against the real ASGI server; the evaluation is run by a
real Celery worker on a real engine bundle. Skipped without chromium, except in CI.
"""
from __future__ import annotations

import csv
import io

import pytest
from browsertesting import CHROMIUM_ARGS, sign_in
from evaluationtesting import bundle_with_test_split, demo_dataset
from predictiontesting import engine_bundle, make_engine_model

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "evaluation-in-a-browser-1"


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def test_model_page_shows_the_test_split_and_downloads_the_csv(
    chromium, asgi_live_server, celery_worker, make_user, make_project, bundle, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    user = make_user("evaluator", password=PASSWORD)
    project = make_project(user, name="Evaluation project")
    dataset = demo_dataset(project, bundle[1], labelled_test=True)
    model = make_engine_model(project, bundle_with_test_split(bundle[0], tmp_path / "bundle"), dataset=dataset,
                              name="Evaluated model")
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            sign_in(page, asgi_live_server.url, "evaluator", PASSWORD)
            page.goto(asgi_live_server.url + f"/models/{model.pk}/")
            section = page.locator("#model-evaluation")
            # opened while the worker evaluates: the page follows the job and shows the result
            expect(section).to_have_attribute("data-evaluation-status", "succeeded", timeout=300_000)
            body = page.request.get(asgi_live_server.url + f"/api/models/{model.pk}/evaluation/").json()
            dots = sum(1 for c in body["report"]["cases"] for row in c["classes"].values() if row["dice"] is not None)
            expect(page.locator("#evaluation-cases")).to_contain_text("oblique_case")
            expect(page.locator("#evaluation-summary")).to_contain_text("organ")
            plot = page.locator("#evaluation-boxplot")
            expect(plot).to_be_visible()
            assert plot.bounding_box()["width"] > 300
            expect(plot.locator("circle")).to_have_count(dots)
            with page.expect_download() as info:
                page.click("#evaluation-csv")
            text = open(info.value.path(), encoding="utf-8").read()
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0][:3] == ["case", "class", "dice"] and len(rows) == 1 + 2 * len(body["report"]["cases"])
            expect(page.locator("#train-controls")).to_be_visible()
            page.screenshot(path=str(tmp_path / "evaluation.png"), full_page=True)
        finally:
            browser.close()
    assert not console_errors, console_errors
