"""In headless Chromium, which numbers of a run's events the dashboard charts
(frontend/static/js/runs/series.js), on a page of the project's own modules: every numeric leaf
of a step event, grouped by its top-level key, and nothing that only places the event; one x axis
that keeps growing over stages and candidates that each count their steps from 1."""
from __future__ import annotations

import pytest
from browsertesting import CHROMIUM_ARGS, open_module_page

pytestmark = [pytest.mark.browser]

SERIES_PAGE = """
<script type="module">
import * as series from '/static/js/runs/series.js';
window.series = series;
window.ready = true;
</script>
"""


@pytest.fixture
def page(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = open_module_page(browser.new_context(), SERIES_PAGE)
            page.wait_for_function("() => window.ready === true")
            yield page
        finally:
            browser.close()


def test_every_numeric_leaf_of_a_step_event_is_a_series_of_its_group(page):
    event = {
        "seq": 7, "type": "step", "time": 1.5e9, "step": 3, "total_steps": 10, "progress": 0.3, "phase": "search",
        "stage": "coarse", "losses": {"seg": 0.5, "arch": {"entropy": 0.1, "memory": 0.2}}, "lrs": {"weights": 0.025},
        "metrics": {"temperature": 4.0, "gate_polarisation": 0.7, "note": "text", "flag": True, "missing": None},
        "memory_bytes": 1_000_000, "memory_kind": "rss", "seconds": 0.25, "reg_scale": 0.5,
    }
    points = page.evaluate("(e) => window.series.stepSeries(e)", event)
    assert sorted((p["group"], p["name"], p["value"]) for p in points) == sorted([
        ("losses", "seg", 0.5), ("losses", "arch.entropy", 0.1), ("losses", "arch.memory", 0.2),
        ("lrs", "weights", 0.025), ("metrics", "temperature", 4.0), ("metrics", "gate_polarisation", 0.7),
        ("memory_bytes", "memory_bytes", 1_000_000), ("seconds", "seconds", 0.25), ("reg_scale", "reg_scale", 0.5),
    ])


def test_validation_dice_per_class_and_mean_without_empty_classes(page):
    points = page.evaluate("(e) => window.series.validationSeries(e)",
                           {"type": "validation", "step": 4, "dice": {"liver": 0.8, "tumour": None}, "mean_dice": 0.8})
    assert points == [{"group": "dice", "name": "liver", "value": 0.8}, {"group": "dice", "name": "mean", "value": 0.8}]


def test_the_step_axis_grows_over_stages_and_candidates_that_restart_at_one(page):
    xs = page.evaluate("""() => { const axis = new window.series.StepAxis();
        const events = [{step: 1}, {step: 2},
                        {step: 1, stage: 'coarse', candidate: 'a'}, {step: 2, stage: 'coarse', candidate: 'a'},
                        {step: 1, stage: 'coarse', candidate: 'b'}, {step: 2, stage: 'coarse', candidate: 'a'},
                        {step: 1, stage: 'supernet'}, {type: 'run_started'}];
        return events.map((e) => axis.x(e)); }""")
    assert xs == [1, 2, 3, 4, 5, 4, 6, None]
