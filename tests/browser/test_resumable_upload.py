"""In a real browser: the dataset upload page sends its files resumably (tus, Uppy), a
connection that drops in the middle of a file resumes from where it stopped, and the
finished uploads become the dataset (issue 14, item 1).

Headless Debian chromium driven by Playwright against the real ASGI server (uvicorn). The drop
is a real aborted request: Playwright fails the second chunk of each file at the network
layer, as a cut link would; Uppy asks the server where the upload ends (HEAD) and goes on.
"""
from __future__ import annotations

import hashlib
import re
import time

import pytest
from browsertesting import CHROMIUM_ARGS, STATIC, sign_in
from test_dataset_upload import write_case

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "resume-in-a-browser-1"
CHUNK = 32 * 1024  # small chunks, so each test file takes several requests


def test_a_dropped_chunk_resumes_where_it_stopped_and_the_dataset_is_created(
    chromium, asgi_live_server, make_user, make_project, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    assert (STATIC / "vendor" / "uppy" / "uppy.min.mjs").is_file(), "build the front end first (cd frontend && npm ci && npm run build)"
    user = make_user("resumer", password=PASSWORD)
    project = make_project(user, name="Resumable project")
    files = write_case(tmp_path, "knee1", seed=1)
    base = asgi_live_server.url
    requests: list[tuple[str, str, str | None]] = []  # (method, upload url, Upload-Offset)
    dropped: list[str] = []
    console_errors: list[str] = []

    def drop_second_chunk(route):
        request = route.request
        offset = request.headers.get("upload-offset")
        if request.method == "PATCH" and offset == str(CHUNK) and request.url not in dropped:
            dropped.append(request.url)
            route.abort("connectionreset")
            return
        route.continue_()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append((r.method, r.url, r.headers.get("upload-offset")))
                    if "/uploads/tus/" in r.url else None)
            page.route(re.compile(r".*/uploads/tus/[0-9a-f]{32}$"), drop_second_chunk)

            sign_in(page, base, "resumer", PASSWORD)
            page.goto(f"{base}/projects/{project.pk}/datasets/upload/")
            page.eval_on_selector("#upload-form", f"form => form.dataset.chunkBytes = '{CHUNK}'")
            page.set_input_files("#id_files", [str(p) for p in files])
            page.fill("#id_name", "Resumed knees")
            page.fill("#id_labels", "1: cartilage")
            page.click("#upload-submit")
            page.wait_for_url("**/datasets/*/", timeout=60_000)
            expect(page.locator("#dataset-name")).to_have_text("Resumed knees")
            page.wait_for_load_state("load")  # the dataset page itself loads (not only its heading)
        finally:
            browser.close()

    big = [p for p in files if p.stat().st_size > 2 * CHUNK]
    assert big, "the image must take several chunks"
    assert len(dropped) == len(big), f"one dropped chunk per file of several chunks: {dropped}"
    for url in dropped:
        mine = [(method, offset) for method, u, offset in requests if u == url]
        patches = [offset for method, offset in mine if method == "PATCH"]
        # The dropped chunk was sent again after the client asked where the upload ends (HEAD),
        # and nothing of this file was ever sent again from the start.
        assert patches.count("0") == 1 and patches.count(str(CHUNK)) == 2, mine
        first, second = [i for i, r in enumerate(mine) if r == ("PATCH", str(CHUNK))]
        assert ("HEAD", None) in mine[first + 1:second], mine
    errors = [e for e in console_errors if "WebSocket" not in e and "ERR_CONNECTION_RESET" not in e and "Failed to load resource" not in e]
    assert not errors, errors

    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.get(project=project, name="Resumed knees")
    # The session's worker may already have imported (and cleared) the uploaded files: then the
    # import's own checks vouch for the bytes (gzip CRC and the exact voxel length of each file).
    for path in files:
        stored = dataset.upload_dir / path.name
        try:
            digest = hashlib.sha256(stored.read_bytes()).hexdigest()
        except FileNotFoundError:
            continue
        assert digest == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
    if not (dataset.upload_dir / files[0].name).exists():
        deadline = time.monotonic() + 120
        while dataset.status not in ("ready", "invalid") and time.monotonic() < deadline:
            time.sleep(0.5)
            dataset.refresh_from_db()
        assert dataset.status == "ready", dataset.problems
