"""The run page in headless Chromium, fed by events stored and broadcast through the web app's
own event sink (webapp.runs.events.RunEventSink, as a worker does), served by the real ASGI
server (uvicorn, Channels, Redis):

- charts: every numeric series of the step events gets a chart and a toggle (a method's
  `metrics.temperature` included), with hover values, a log-scale switch, a flat learning rate
  padded around its value, CSV and PNG downloads;
- graph views: the lattice, cell, U-shaped and gated genotypes of tests/fixtures/genotypes
  are each drawn as their kind, checked by what the page shows (nodes and
  edges per cell type, skip arcs, "off" and pruned edges and dead nodes styled so);
- a newer snapshot of the same architecture updates the drawn elements in place;
- the live page: Best Dice from the validation events, a cut socket shown stale and
  reconnecting (never live), cancel asks first, the ETA clears, resume after cancel, rename.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from browsertesting import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "genotypes"
TIMEOUT_MS = 30_000
TOKEN = "dashboard-test-worker"

def fixture_genotype(name: str) -> dict:
    """A genotype of tests/fixtures/genotypes (written with the genotype format of issue 7)."""
    path = FIXTURES / f"{name}.json"
    assert path.is_file(), f"{path} is missing (the genotype fixtures of docs/PLUGIN-SURFACE.md §2)"
    return json.loads(path.read_text())


class RunFeed:
    """A search run of a fresh project with a worker's claim, and the web app's sink to feed it."""

    def __init__(self, make_user, make_project):
        from webapp.datasets.models import Dataset
        from webapp.runs.events import RunEventSink
        from webapp.runs.models import Run

        self.owner = make_user("viewer-of-charts")
        project = make_project(self.owner)
        dataset = Dataset.objects.create(project=project, name="D", source="files", status=Dataset.Status.READY,
                                         labels={"0": "background", "1": "liver", "2": "tumour"})
        self.run = Run.objects.create(project=project, dataset=dataset, kind="search", method="dints", preset="tiny",
                                      config={}, resolved_config={}, gpu_budget_bytes=8 * 10**9, estimate_bytes=10**9)
        self.run.transition("running")
        Run.objects.filter(pk=self.run.pk).update(claim_token=TOKEN)
        self.sink = RunEventSink(self.run.pk, TOKEN)
        self.seq = 0
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-sink")

    def emit(self, type: str, **payload) -> dict:
        """Store and broadcast one event, as the worker's reporter does. From a thread of its
        own: the sink's broadcast (async_to_sync) refuses a thread with an event loop, and
        Playwright's sync API runs one in the test's thread."""
        self.seq += 1
        event = {"seq": self.seq, "type": type, "time": time.time(), **payload}
        self.worker.submit(self._store, event).result()
        return event

    def _store(self, event: dict) -> None:
        from django.db import connection

        try:
            self.sink(event)
        finally:
            connection.close()  # this thread's own connection: not left open on the test database


@pytest.fixture
def feed(make_user, make_project, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain
    # blocking calls on the test database, not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    feed = RunFeed(make_user, make_project)
    yield feed
    feed.worker.shutdown(wait=True)


@pytest.fixture
def run_page(chromium, asgi_live_server, session_cookie, tmp_path):
    """``open(feed) -> page`` on the feed's run page; fails the test on a page error."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)

        def open_page(feed: RunFeed, before_open=None):
            base = asgi_live_server.url
            context.add_cookies([{"name": "sessionid", "value": session_cookie(feed.owner)["sessionid"], "url": base}])
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            if before_open is not None:
                before_open(page)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/runs/{feed.run.pk}/")
            page.wait_for_function(f"() => document.body.dataset.lastSeq === '{feed.seq}'")
            return page

        try:
            yield open_page
        finally:
            for n, page in enumerate(context.pages):
                page.screenshot(path=str(tmp_path / f"page-{n}.png"), full_page=True)
            browser.close()
    assert not errors, errors


LOSSES = [1.0, 0.5, 0.25, 0.125]
TEMPERATURES = [5.0, 4.0, 3.0, 2.0]


def _feed_steps(feed: RunFeed) -> None:
    feed.emit("run_started", phase="search", total_steps=4, device="cpu")
    for step, (loss, temperature) in enumerate(zip(LOSSES, TEMPERATURES), start=1):
        feed.emit("step", step=step, total_steps=4, phase="search", losses={"seg": loss, "arch": loss / 2},
                  lrs={"weights": 0.025}, metrics={"temperature": temperature}, memory_bytes=10**6 * step,
                  memory_kind="rss", seconds=0.5)
        if step % 2 == 0:
            feed.emit("validation", step=step, dice={"liver": 0.2 * step, "tumour": None}, mean_dice=0.1 * step)


def _chart(page, group: str) -> dict:
    return page.evaluate("""(id) => { const c = document.getElementById(id);
        return c ? { points: Number(c.dataset.points), series: JSON.parse(c.dataset.series), log: c.dataset.log,
                     yMin: Number(c.dataset.yMin), yMax: Number(c.dataset.yMax) } : null; }""", f"chart-{group}")


def test_every_numeric_series_is_charted_with_toggles_hover_log_scale_and_downloads(feed, run_page, tmp_path):
    _feed_steps(feed)
    page = run_page(feed)
    page.wait_for_function("() => Number(document.getElementById('chart-metrics')?.dataset.points) === 4")

    # One chart per group of numeric leaves, none of them named in the page's code.
    groups = page.eval_on_selector_all("#chart-board .chart-card", "cards => cards.map(c => c.dataset.group)")
    assert groups[:2] == ["losses", "dice"] and set(groups) == {"losses", "dice", "lrs", "metrics", "memory_bytes", "seconds"}, groups
    assert _chart(page, "metrics")["series"] == ["temperature"]
    assert _chart(page, "losses")["series"] == ["seg", "arch"] and _chart(page, "losses")["points"] == 8
    assert _chart(page, "dice") == {**_chart(page, "dice"), "series": ["liver", "mean"], "points": 4}  # a null class is no point
    assert "resident memory" in page.inner_text("#memory-used")

    # The flat learning rate is padded around its value (not 0.025 - 0.5 .. 0.025 + 0.5).
    lrs = _chart(page, "lrs")
    assert 0.02 <= lrs["yMin"] < 0.025 < lrs["yMax"] <= 0.03, lrs

    # The temperature series has a toggle in the legend: off, then on again.
    toggle = page.locator("#chart-metrics .u-legend .u-series", has_text="temperature")
    assert toggle.count() == 1
    toggle.locator(".u-label").click()
    assert "u-off" in toggle.get_attribute("class")
    toggle.locator(".u-label").click()
    assert "u-off" not in (toggle.get_attribute("class") or "")

    # Hover values: the legend shows the value under the cursor.
    box = page.locator("#chart-metrics .u-over").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector('#chart-metrics .u-legend .u-series:nth-child(2) .u-value').textContent === '5'")

    # Log scale: the losses start on a log axis and switch to a linear one (5% padding).
    losses = _chart(page, "losses")
    assert losses["log"] == "true" and losses["yMax"] == pytest.approx(1.25)
    page.uncheck("#losses-card .chart-log")
    page.wait_for_function("() => document.getElementById('chart-losses').dataset.log === 'false'")
    linear = _chart(page, "losses")
    assert linear["yMin"] == pytest.approx(0.0625 - 0.05 * 0.9375) and linear["yMax"] == pytest.approx(1 + 0.05 * 0.9375)
    page.check("#metrics-card .chart-log")
    page.wait_for_function("() => document.getElementById('chart-metrics').dataset.log === 'true'")
    assert _chart(page, "metrics")["yMin"] == pytest.approx(2 / 1.25)

    # CSV: a header and one row per step, the values as sent.
    with page.expect_download() as info:
        page.click("#metrics-card .chart-csv")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert info.value.suggested_filename == f"run-{feed.run.pk}-metrics.csv"
    assert rows == [["step", "temperature"], *([str(s), str(t)] for s, t in zip(range(1, 5), ["5", "4", "3", "2"]))]
    with page.expect_download() as info:
        page.click("#losses-card .chart-csv")
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    assert rows[0] == ["step", "seg", "arch"] and [float(v) for v in rows[4][1:]] == [0.125, 0.0625]
    # PNG: an image of the chart.
    with page.expect_download() as info:
        page.click("#losses-card .chart-png")
    png = Path(info.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    saved = tmp_path / "losses.png"
    saved.write_bytes(png)

    # A new series arriving live gets its chart and toggle without a reload.
    feed.emit("step", step=5, total_steps=5, phase="search", losses={"seg": 0.1}, metrics={"gate_polarisation": 0.7})
    page.wait_for_function("() => JSON.parse(document.getElementById('chart-metrics').dataset.series).includes('gate_polarisation')")
    assert page.locator("#chart-metrics .u-legend .u-series", has_text="gate_polarisation").count() == 1


def _graph(page) -> dict:
    return page.evaluate("() => ({...document.getElementById('arch-graph').dataset})")


def _show(feed: RunFeed, run_page, genotype: dict):
    feed.emit("architecture", step=1, genotype=genotype)
    page = run_page(feed)
    page.wait_for_selector("#arch-graph svg path.edge", state="attached")
    return page


def test_lattice_draws_layer_by_level_with_unselected_edges_off(feed, run_page):
    doc = fixture_genotype("lattice")
    snapshot = copy.deepcopy(doc)
    snapshot["continuous"] = True
    candidates = [i for i, e in enumerate(snapshot["edges"]) if "weight" in e]
    assert len(candidates) >= 2, "the lattice fixture has no weighted (candidate) edges"
    for i in candidates:
        snapshot["edges"][i]["selected"] = True
    off = snapshot["edges"][candidates[0]]
    off["selected"] = False
    page = _show(feed, run_page, snapshot)

    shown = _graph(page)
    assert shown["kind"] == "lattice"
    assert page.locator("#arch-graph svg circle.node").count() == len(doc["nodes"])
    assert page.locator("#arch-graph svg path.edge").count() == len(doc["edges"])
    # Exactly the unselected edge is drawn off (dashed), the selected ones are not.
    off_edges = page.locator("#arch-graph svg path.edge.edge-off")
    assert off_edges.count() == 1 and shown["offEdges"] == "1"
    assert off_edges.get_attribute("data-source") == off["source"] and off_edges.get_attribute("data-target") == off["target"]
    assert off_edges.get_attribute("stroke-dasharray")
    # Lattice places: a coarser level is drawn lower.
    y = {n["id"]: float(page.get_attribute(f"#arch-graph svg circle.node[data-node='{n['id']}']", "cy")) for n in doc["nodes"]}
    by_level = {}
    for n in doc["nodes"]:
        by_level.setdefault(n.get("level", 0), []).append(y[n["id"]])
    levels = sorted(by_level)
    assert all(max(by_level[a]) < min(by_level[b]) for a, b in zip(levels, levels[1:]) if a >= 0), by_level
    assert page.locator("#graph-legend [data-style=off]").count() == 1

    # Hover: the edge's op and weight.
    off_edges.dispatch_event("pointerover")
    hover = page.inner_text("#arch-graph .graph-hover")
    assert f"{off['source']} → {off['target']}" in hover and "off" in hover

    # A newer snapshot of the same lattice: the same elements, moved to their new style. Without
    # `selected`, an edge of weight < 0.5 is off.
    page.evaluate("() => { window.__edges = [...document.querySelectorAll('#arch-graph svg path.edge')]; }")
    newer = copy.deepcopy(snapshot)
    for e in newer["edges"]:
        e.pop("selected", None)
        if "weight" in e:
            e["weight"] = 0.9
    newer["edges"][candidates[1]]["weight"] = 0.2
    feed.emit("architecture", step=2, genotype=newer)
    page.wait_for_function("() => document.getElementById('arch-graph').dataset.step === '2'")
    assert page.evaluate("() => window.__edges.every((e) => e.isConnected)")
    assert page.evaluate("Number(document.querySelector('#arch-graph svg').dataset.updates)") >= 1
    now_off = page.locator("#arch-graph svg path.edge.edge-off")
    assert now_off.count() == 1
    assert now_off.get_attribute("data-source") == newer["edges"][candidates[1]]["source"]
    assert now_off.get_attribute("data-weight") == "0.200"


def test_cells_draw_the_macro_network_and_one_dag_per_cell_type(feed, run_page):
    doc = fixture_genotype("cells")
    assert len(doc["cells"]) >= 2
    page = _show(feed, run_page, doc)
    assert _graph(page)["kind"] == "cells"
    macro_nodes = page.locator("#arch-graph svg circle.node[data-graph=macro]")
    assert macro_nodes.count() == len(doc["nodes"])
    assert page.locator("#arch-graph svg path.edge[data-graph=macro]").count() == len(doc["edges"])
    for cell in doc["cells"]:
        graph = f"cell:{cell['name']}"
        assert page.locator(f"#arch-graph svg circle.node[data-graph='{graph}']").count() == len(cell["nodes"]), cell["name"]
        assert page.locator(f"#arch-graph svg path.edge[data-graph='{graph}']").count() == len(cell["edges"]), cell["name"]
        panel = page.locator(f"#arch-graph svg rect.graph-panel[data-panel='{graph}']")
        assert panel.count() == 1
        # every node of the cell is drawn inside its panel
        x, y, w, h = (float(panel.get_attribute(k)) for k in ("x", "y", "width", "height"))
        for node in page.locator(f"#arch-graph svg circle.node[data-graph='{graph}']").all():
            cx, cy = float(node.get_attribute("cx")), float(node.get_attribute("cy"))
            assert x <= cx <= x + w and y <= cy <= y + h, (cell["name"], cx, cy, x, y, w, h)
    # Each macro instance names its cell type.
    instances = [n for n in doc["nodes"] if n.get("cell")]
    assert instances
    labelled = page.eval_on_selector_all("#arch-graph svg circle.node[data-graph=macro][data-cell]", "ns => ns.map(n => n.dataset.cell)")
    assert sorted(labelled) == sorted(n["cell"] for n in instances)


def test_ushape_draws_levels_over_depth_with_skip_arcs(feed, run_page):
    doc = fixture_genotype("ushape")
    skips = [e for e in doc["edges"] if e.get("role") == "skip"]
    assert skips, "the U-shape fixture has no skip edges"
    page = _show(feed, run_page, doc)
    assert _graph(page)["kind"] == "ushape"
    assert page.locator("#arch-graph svg circle.node").count() == len(doc["nodes"])
    assert page.locator("#arch-graph svg path.edge").count() == len(doc["edges"])
    for e in skips:
        edge = page.locator(f"#arch-graph svg path.edge[data-source='{e['source']}'][data-target='{e['target']}'][data-role=skip]")
        assert edge.count() == 1 and "edge-skip" in edge.get_attribute("class") and " Q" in edge.get_attribute("d"), e
    # C2FNAS colours cells: every node with an op is filled with that op's colour.
    with_ops = [n for n in doc["nodes"] if n.get("op")]
    assert with_ops
    assert page.locator("#arch-graph svg circle.node-op").count() == len(with_ops)
    # A path: each node further along is drawn further right.
    xs = [float(page.get_attribute(f"#arch-graph svg circle.node[data-node='{n['id']}']", "cx")) for n in doc["nodes"]]
    assert len(set(xs)) > len(doc["nodes"]) // 2
    assert page.locator("#graph-legend [data-style=skip]").count() == 1


def _pruned_and_dead(doc: dict) -> tuple[set[str], set[str]]:
    """Edges ("source>target") and nodes a gate threshold removes, by the rule of
    docs/PLUGIN-SURFACE.md §2: gates below it go, then nodes left without an input (or an
    output) die with their edges, until nothing changes."""
    threshold = doc["gates"]["threshold"]
    kept = [e for e in doc["edges"] if not (isinstance(e.get("gate"), (int, float)) and e["gate"] < threshold)]
    dead: set[str] = set()
    while True:
        live = [e for e in kept if e["source"] not in dead and e["target"] not in dead]
        more = {n["id"] for n in doc["nodes"] if n["id"] not in dead and (
            (n["kind"] != "input" and not any(e["target"] == n["id"] for e in live))
            or (n["kind"] != "output" and not any(e["source"] == n["id"] for e in live)))}
        if not more:
            break
        dead |= more
    pruned = {f"{e['source']}>{e['target']}" for e in doc["edges"]
              if e not in kept or e["source"] in dead or e["target"] in dead}
    return pruned, dead


def test_gated_graph_is_laid_out_by_dagre_with_pruned_gates_and_dead_nodes_styled(feed, run_page):
    doc = fixture_genotype("gated")
    pruned, dead = _pruned_and_dead(doc)
    assert pruned and dead, "the gated fixture prunes nothing"
    page = _show(feed, run_page, doc)
    assert _graph(page)["kind"] == "graph"
    assert page.locator("#arch-graph svg circle.node").count() == len(doc["nodes"])
    assert page.locator("#arch-graph svg path.edge").count() == len(doc["edges"])
    drawn_pruned = page.eval_on_selector_all("#arch-graph svg path.edge.edge-pruned", "es => es.map(e => `${e.dataset.source}>${e.dataset.target}`)")
    assert set(drawn_pruned) == pruned
    assert all(page.eval_on_selector_all("#arch-graph svg path.edge.edge-pruned", "es => es.map(e => e.getAttribute('stroke-dasharray'))"))
    drawn_dead = page.eval_on_selector_all("#arch-graph svg circle.node.node-dead", "ns => ns.map(n => n.dataset.node)")
    assert set(drawn_dead) == dead
    # layered left to right: every edge between live nodes points rightwards
    x = {n["id"]: float(page.get_attribute(f"#arch-graph svg circle.node[data-node='{n['id']}']", "cx")) for n in doc["nodes"]}
    assert all(x[e["source"]] < x[e["target"]] for e in doc["edges"])
    assert page.locator("#graph-legend [data-style=pruned]").count() == 1
    node = next(n for n in doc["nodes"] if n["kind"] == "feature" and n["id"] not in dead)
    page.hover(f"#arch-graph svg circle.node[data-node='{node['id']}']")
    assert page.inner_text("#arch-graph .graph-hover").startswith(f"{node['id']}: feature, {node['channels']} channels")


# --- the live page never says what isn't so (issue 13 item 3) ---------------------------------
def test_best_dice_follows_the_validation_events_live(feed, run_page):
    feed.emit("run_started", phase="search", total_steps=10, device="cpu")
    feed.emit("step", step=1, total_steps=10, phase="search", losses={"seg": 1.0})
    page = run_page(feed)
    assert page.inner_text("#run-best-dice") == "—"
    feed.emit("validation", step=1, dice={"liver": 0.47, "tumour": None}, mean_dice=0.47)
    page.wait_for_function("() => document.getElementById('run-best-dice').textContent === '0.470'")
    feed.emit("validation", step=2, dice={"liver": 0.31, "tumour": None}, mean_dice=0.31)  # worse: best stays
    feed.emit("validation", step=3, dice={"liver": 0.62, "tumour": None}, mean_dice=0.62)
    page.wait_for_function("() => document.getElementById('run-best-dice').textContent === '0.620'")
    assert page.inner_text("#run-best-dice") == "0.620"


def test_a_cut_socket_is_shown_stale_and_reconnecting_never_live_and_recovers(feed, run_page, chromium):
    """The WebSocket is routed through Playwright; cutting it drops every frame both ways (the
    TCP connection stays open, as when a network path dies). The page pings every 500 ms here."""
    import re

    feed.emit("run_started", phase="search", total_steps=10, device="cpu")
    cut = {"on": False}

    def route(ws):
        server = ws.connect_to_server()
        ws.on_message(lambda message: None if cut["on"] else server.send(message))
        server.on_message(lambda message: None if cut["on"] else ws.send(message))

    def before_open(page):
        page.add_init_script("window.VS_HEARTBEAT_MS = 500;")
        page.route_web_socket(re.compile(r".*/ws/runs/\d+/$"), route)

    page = run_page(feed, before_open=before_open)
    page.wait_for_function("() => document.getElementById('run-connection').dataset.state === 'live'")
    cut["on"] = True
    page.wait_for_function("() => document.getElementById('run-connection').dataset.state === 'stale'", timeout=10_000)
    assert "reconnecting" in page.inner_text("#run-connection")
    states = set()
    for _ in range(12):  # 3 s cut: stale or reconnecting, never live
        states.add(page.evaluate("document.getElementById('run-connection').dataset.state"))
        page.wait_for_timeout(250)
    assert "live" not in states and states <= {"stale", "connecting", "reconnecting"}, states
    cut["on"] = False
    feed.emit("step", step=1, total_steps=10, phase="search", losses={"seg": 1.0})
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        seen.append(page.evaluate("document.getElementById('run-connection').textContent"))
        if page.evaluate("document.getElementById('run-connection').dataset.state") == "live":
            break
        page.wait_for_timeout(250)
    assert seen and page.evaluate("document.getElementById('run-connection').dataset.state") == "live", seen[-10:]
    page.wait_for_function(f"() => document.body.dataset.lastSeq === '{feed.seq}'")


def test_cancel_asks_first_the_eta_clears_and_the_cancelled_run_can_be_resumed(feed, run_page):
    from webapp.runs.models import Run

    Run.objects.filter(pk=feed.run.pk).update(attempts=1)  # the worker's claim counted one attempt
    feed.emit("run_started", phase="search", total_steps=100, device="cpu")
    for step in range(1, 4):
        feed.emit("step", step=step, total_steps=100, phase="search", losses={"seg": 1.0 / step})
    page = run_page(feed)
    page.wait_for_function("() => document.getElementById('run-eta').textContent !== '—'")
    questions = []

    def answer(dialog, accept):
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    page.click("#cancel-run")
    page.wait_for_timeout(300)
    assert questions and "checkpoint" in questions[0]
    assert not feed.worker.submit(lambda: Run.objects.get(pk=feed.run.pk).cancel_requested).result()
    page.once("dialog", lambda d: answer(d, True))
    with page.expect_navigation():
        page.click("#cancel-run")
    assert feed.worker.submit(lambda: Run.objects.get(pk=feed.run.pk).cancel_requested).result()
    # the worker sees the flag, checkpoints and reports (as runtime.run_execute does)
    feed.emit("cancelled", step=3)
    feed.worker.submit(_finish_cancelled, feed.run.pk).result()
    page.wait_for_function("() => document.getElementById('run-status').dataset.status === 'cancelled'")
    assert page.inner_text("#run-eta") == "—"
    assert page.is_visible("#resume-run") and not page.is_visible("#cancel-run")
    with page.expect_navigation():
        page.click("#resume-run")
    # Queued again. When a Celery worker runs in this test session it takes the run at once
    # (attempt 2) and, the feed's dataset having no files, fails it: either way it left cancelled.
    shown = page.locator("#run-status").get_attribute("data-status")
    run = feed.worker.submit(lambda: Run.objects.get(pk=feed.run.pk)).result()
    assert shown in ("queued", "running", "failed") and run.status in ("queued", "running", "failed"), (shown, run.status)
    assert not run.cancel_requested and run.attempts in (1, 2)
    assert not page.is_visible("#resume-run")


def _finish_cancelled(run_id: int) -> None:
    from django.db import connection

    from webapp.runs.runtime import finish

    try:
        finish(run_id, TOKEN, "cancelled")
    finally:
        connection.close()


def test_a_run_is_renamed_in_place(feed, run_page):
    from webapp.runs.models import Run

    feed.emit("run_started", phase="search", total_steps=10, device="cpu")
    page = run_page(feed)
    page.click("#run-name-edit")
    page.fill("#run-name-input", "Liver, wide lattice")
    page.click("#run-name-save")
    page.wait_for_function("() => document.getElementById('run-name').textContent === 'Liver, wide lattice'")
    assert feed.worker.submit(lambda: Run.objects.get(pk=feed.run.pk).name).result() == "Liver, wide lattice"
    page.click("#run-name-edit")
    page.fill("#run-name-input", "x" * 200 + "y")  # maxlength keeps it at 200
    page.click("#run-name-save")
    page.wait_for_function("() => document.getElementById('run-name').textContent.length === 200")


def test_chart_axes_are_sane_for_one_and_two_points(feed, run_page):
    """Issue 13: the learning-rate axis at steps 1-2 ran from -0.475 to 0.525."""
    feed.emit("run_started", phase="search", total_steps=10, device="cpu")
    feed.emit("step", step=1, total_steps=10, phase="search", losses={"seg": 0.8}, lrs={"weights": 0.025})
    page = run_page(feed)
    page.wait_for_function("() => Number(document.getElementById('chart-lrs')?.dataset.points) === 1 && "
                           "document.getElementById('chart-lrs').dataset.xMax !== undefined")
    one = page.evaluate("({...document.getElementById('chart-lrs').dataset})")
    assert (float(one["xMin"]), float(one["xMax"])) == (0.0, 2.0), one
    assert 0.02 <= float(one["yMin"]) < 0.025 < float(one["yMax"]) <= 0.03, one
    feed.emit("step", step=2, total_steps=10, phase="search", losses={"seg": 0.6}, lrs={"weights": 0.025})
    page.wait_for_function("() => Number(document.getElementById('chart-lrs').dataset.points) === 2 && "
                           "document.getElementById('chart-lrs').dataset.xMin === '1'")
    two = page.evaluate("({...document.getElementById('chart-lrs').dataset})")
    assert (float(two["xMin"]), float(two["xMax"])) == (1.0, 2.0), two
    assert 0.02 <= float(two["yMin"]) < 0.025 < float(two["yMax"]) <= 0.03, two
    losses = page.evaluate("({...document.getElementById('chart-losses').dataset})")
    assert float(losses["yMin"]) > 0 and float(losses["yMax"]) < 1.1, losses  # log axis around 0.6..0.8
