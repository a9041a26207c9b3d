"""The comparison workspace in a real browser (issue 13.4): pick two runs and a model on the
project page's way in, see their Dice and loss curves overlaid in one chart each, and download
the side-by-side table as CSV and a chart as CSV, SVG and PNG."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from browsertesting import CHROMIUM_ARGS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "compare-in-a-browser-1"


def _genotype() -> dict:
    from nasengine.methods import get_method

    method = get_method("dints")
    return method.build_supernet(method.make_config("tiny", {}), 1, 3).decode()


def _run(project, dataset, genotype, **fields):
    from webapp.runs.models import Run

    run = Run.objects.create(project=project, dataset=dataset, method="dints", preset="tiny", gpu_budget_bytes=8 << 30,
                             estimate_bytes=1 << 30, genotype=genotype, **fields)
    run.transition("running")
    run.transition("succeeded")
    return run


def _model(project, dataset, genotype):
    """A registered model whose bundle holds what registering reads (no weights needed here)."""
    from webapp.mlmodels.services import register_model

    run = _run(project, dataset, genotype, kind="retrain")
    run.bundle_dir.mkdir(parents=True, exist_ok=True)
    (run.bundle_dir / "bundle.json").write_text(json.dumps({
        "format": "voxelsearch-model", "version": 1, "method": "dints", "labels": {"0": "background", "1": "a", "2": "b"},
        "channel_names": ["image"], "validation": {"dice": {"a": 0.5, "b": 0.25}, "mean_dice": 0.375}}))
    (run.bundle_dir / "genotype.json").write_text(json.dumps(genotype))
    return register_model(run)


def _world(make_user, make_project):
    from webapp.datasets.models import Dataset
    from webapp.runs.models import RunEvent

    user = make_user("comparer", password=PASSWORD)
    project = make_project(user, name="Comparison project")
    dataset = Dataset.objects.create(project=project, name="Liver CT", source="folder", status="ready",
                                     labels={"0": "background", "1": "a", "2": "b"})
    genotype = _genotype()
    runs = []
    for name, losses, dice in (("Search one", [1.0, 0.7, 0.5, 0.3], {2: 0.3, 4: 0.6}),
                               ("Search two", [1.2, 1.0, 0.9, 0.85], {2: 0.2, 4: 0.35})):
        run = _run(project, dataset, genotype, name=name)
        seq = 0
        for step, loss in enumerate(losses, start=1):
            seq += 1
            RunEvent.objects.create(run=run, seq=seq, type="step", time=float(seq),
                                    payload={"step": step, "losses": {"seg": loss}, "memory_bytes": 10_000_000})
            if step in dice:
                seq += 1
                RunEvent.objects.create(run=run, seq=seq, type="validation", time=float(seq),
                                        payload={"step": step, "dice": {"a": dice[step], "b": dice[step]}, "mean_dice": dice[step]})
        runs.append(run)
    return user, project, runs, _model(project, dataset, genotype)


def test_overlaid_curves_and_csv_downloads(chromium, asgi_live_server, make_user, make_project, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    user, project, (one, two), model = _world(make_user, make_project)
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in(page, asgi_live_server.url, "comparer", PASSWORD)
            page.goto(f"{asgi_live_server.url}/projects/{project.pk}/")
            page.click("#project-compare")
            # It opens with the newest model, not empty.
            expect(page.locator("#overview-table tbody tr")).to_have_count(1)
            page.check(f'#compare-pick input[name="run"][value="{one.pk}"]')
            page.check(f'#compare-pick input[name="run"][value="{two.pk}"]')
            page.click("#compare-submit")
            expect(page.locator("#overview-table tbody tr")).to_have_count(3)
            expect(page.locator("body")).to_have_attribute("data-compare-ready", "true")

            dice = page.locator("#compare-chart-dice")
            expect(dice).to_have_attribute("data-points", "4")
            assert set(eval(dice.get_attribute("data-series"))) == {"Search one", "Search two"}  # noqa: S307 - a JSON list of names
            loss = page.locator("#compare-chart-loss")
            expect(loss).to_have_attribute("data-points", "8")
            expect(dice.locator("canvas")).to_have_count(1)
            # Both curves are drawn: each series' colour appears on the chart's canvas.
            import numpy as np
            from PIL import Image

            pixels = np.asarray(Image.open(io.BytesIO(dice.locator("canvas").screenshot())).convert("RGB")).astype(int)
            for colour in ("#1f6f8b", "#e6553c"):  # the first two of charts.js PALETTE
                rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
                assert (np.abs(pixels - rgb).max(axis=2) <= 30).sum() > 20, colour
            page.screenshot(path=str(shots / "comparison-workspace.png"), full_page=True)

            with page.expect_download() as info:
                page.click("#overview-csv")
            rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
            assert (rows[0]["kind"], rows[0]["name"]) == ("model", "DiNTS · Liver CT · tiny · seed 0") == ("model", model.name)
            assert sorted((r["name"], r["mean_dice"]) for r in rows[1:]) == [("Search one", "0.6"), ("Search two", "0.35")]

            with page.expect_download() as info:
                page.click('#compare-dice-card button.chart-csv')
            chart_csv = Path(info.value.path()).read_text().splitlines()
            header = chart_csv[0].split(",")
            assert header[0] == "step" and sorted(header[1:]) == ["Search one", "Search two"]
            last = dict(zip(header, chart_csv[-1].split(",")))
            assert last == {"step": "4", "Search one": "0.6", "Search two": "0.35"}
            with page.expect_download() as info:
                page.click('#compare-dice-card button.chart-svg')
            svg = Path(info.value.path()).read_text()
            assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "Search two" in svg
            with page.expect_download() as info:
                page.click('#compare-dice-card button.chart-png')
            assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert not errors, errors
        finally:
            browser.close()
