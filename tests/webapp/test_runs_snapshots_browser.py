"""The dashboard's own snapshot decoder (frontend/static/js/runs/snapshots.js) in Chromium
rebuilds, from the compact stream the server sends, exactly the genotypes that were stored."""
from __future__ import annotations

import copy

import pytest
from browsertesting import CHROMIUM_ARGS, find_chromium, open_module_page
from test_runs_snapshot_support import search_events

from webapp.runs.events import SnapshotEncoder

pytestmark = [pytest.mark.browser]


def test_the_dashboard_decoder_rebuilds_every_stored_snapshot():
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    stream = search_events(120)
    # a shape change half-way (a tree patch) and a snapshot equal to the one before
    stream[60] = {**stream[60], "type": "architecture", "genotype": {**stream[1]["genotype"], "note": "pruned"}}
    stream[61] = {**stream[61], "type": "architecture", "genotype": copy.deepcopy(stream[60]["genotype"])}
    encoder = SnapshotEncoder()
    sent = [encoder.encode(copy.deepcopy(e)) for e in stream]
    kinds = {next(iter(e["genotype_patch"])) for e in sent if "genotype_patch" in e}
    assert {"#", "{}"} <= kinds, kinds  # both patch forms are exercised
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = open_module_page(browser.new_context(), "<script type='module'>import * as m from "
                                    "'/static/js/runs/snapshots.js'; window.snapshots = m;</script>")
            page.wait_for_function("window.snapshots !== undefined")
            decoded = page.evaluate("""(sent) => { const d = new window.snapshots.SnapshotDecoder();
                return sent.map((e) => d.decode(e)); }""", sent)
            stale = page.evaluate("""(e) => new window.snapshots.SnapshotDecoder().decode(e)""",
                                  next(e for e in sent if "genotype_patch" in e))
        finally:
            browser.close()
    assert decoded == stream
    assert stale is None  # a patch against a snapshot the page does not hold is not guessed at
