"""In a real browser: sign in, upload a small NIfTI dataset, watch it become ready with previews.

Headless Debian chromium driven by Playwright (python, sync API) against the real ASGI server
(uvicorn) and a real Celery worker (fixtures in tests/conftest.py). No `playwright install`: the
browser is the system's /usr/bin/chromium. Without it the test is skipped, except when
VOXELSEARCH_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.

Set VOXELSEARCH_SCREENSHOT_DIR to keep the screenshots somewhere to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from browsertesting import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "upload-in-a-browser-1"
TIMEOUT_MS = 120_000


def write_case(folder: Path, case_id: str, seed: int) -> list[Path]:
    """A small image with a bright ellipsoid, and its label map (1 inside), sharing one affine."""
    rng = np.random.default_rng(seed)
    shape = (40, 36, 20)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    centre = np.array(shape) / 2 + rng.uniform(-3, 3, size=3)
    inside = ((zz - centre[0]) / 10) ** 2 + ((yy - centre[1]) / 8) ** 2 + ((xx - centre[2]) / 5) ** 2 <= 1
    image = rng.normal(100, 15, size=shape).astype(np.float32)
    image[inside] += 200
    label = inside.astype(np.uint8)
    affine = np.diag([0.9, 0.9, 2.5, 1.0])
    affine[:3, 3] = [-18.0, -16.0, -25.0]
    paths = [folder / f"{case_id}.nii.gz", folder / f"{case_id}_seg.nii.gz"]
    nib.save(nib.Nifti1Image(image, affine), paths[0])
    nib.save(nib.Nifti1Image(label, affine), paths[1])
    return paths


def test_sign_in_upload_and_see_the_dataset_ready_with_previews(
    chromium, asgi_live_server, celery_worker, make_user, make_project, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    # Database work happens before Playwright starts (its sync API runs an event loop, and
    # Django refuses ORM calls while one runs in the thread).
    user = make_user("researcher", password=PASSWORD)
    project = make_project(user, name="Browser project")
    files = write_case(tmp_path, "knee1", seed=1) + write_case(tmp_path, "knee2", seed=2)
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)

            # Sign in (the home page sends an anonymous visitor to the sign-in form).
            page.goto(base + "/")
            expect(page.locator("#login-form")).to_be_visible()
            page.fill("#id_username", "researcher")
            page.fill("#id_password", PASSWORD)
            page.click("#sign-in")
            expect(page.get_by_role("link", name="Browser project")).to_be_visible()

            # Project -> upload page.
            page.get_by_role("link", name="Browser project").click()
            page.click("#upload-dataset")
            expect(page.locator("#upload-form")).to_be_visible()
            page.set_input_files("#id_files", [str(p) for p in files])
            page.fill("#id_name", "Knees")
            page.fill("#id_labels", "1: cartilage")
            page.click("#upload-submit")

            # The dataset page: importing, then ready (the page reloads itself when final).
            page.wait_for_url("**/datasets/*/", timeout=TIMEOUT_MS)
            status = page.locator("#dataset-status")
            expect(status).to_have_attribute("data-status", "ready", timeout=TIMEOUT_MS)
            expect(page.locator("#dataset-name")).to_have_text("Knees")
            expect(page.locator("#num-cases")).to_have_text("2")
            expect(page.locator("#dataset-classes")).to_contain_text("cartilage")

            previews = page.locator("#dataset-cases img.preview")
            expect(previews).to_have_count(2)
            for i in range(2):
                img = previews.nth(i)
                img.scroll_into_view_if_needed()
                page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
                width, height = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
                assert width >= 32 and height >= 16, (width, height)
            case_ids = page.locator("#dataset-cases li.case").evaluate_all("els => els.map(e => e.dataset.caseId)")
            assert sorted(case_ids) == ["knee1", "knee2"]
            page.screenshot(path=str(shots / "dataset-ready.png"), full_page=True)
        except BaseException:
            try:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
            except Exception:
                pass
            raise
        finally:
            browser.close()

    # A dropped WebSocket is tolerated by design (the page polls too); anything else is a bug.
    errors = [e for e in console_errors if "WebSocket" not in e]
    assert not errors, f"errors in the browser console: {errors}"

    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.get(project=project, name="Knees")
    assert dataset.status == "ready"
    assert dataset.cases.count() == 2
    print(f"screenshot: {shots / 'dataset-ready.png'}")


# --- issue 13 item 1: MSD archives as MSD publishes them ---------------------------------------
def msd_archive(folder: Path, out: Path, *, listed_test: list[str], test_cases: dict[str, bool]) -> Path:
    """A Task folder zipped like an MSD download: dataset.json (listing ``listed_test``),
    imagesTr/labelsTr with two cases, and ``test_cases`` (name -> has a label) in imagesTs/labelsTs."""
    import json
    import zipfile

    top = folder / "Task09_Knee"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    training = []
    for i, case_id in enumerate(("knee_001", "knee_002")):
        image, label = write_case(folder / "raw", case_id, seed=i)
        for source, sub in ((image, "imagesTr"), (label, "labelsTr")):
            (top / sub).mkdir(parents=True, exist_ok=True)
            source.rename(top / sub / f"{case_id}.nii.gz")
        training.append({"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz"})
    for i, (case_id, labelled) in enumerate(test_cases.items()):
        image, label = write_case(folder / "raw", case_id, seed=10 + i)
        (top / "imagesTs").mkdir(parents=True, exist_ok=True)
        image.rename(top / "imagesTs" / f"{case_id}.nii.gz")
        if labelled:
            (top / "labelsTs").mkdir(parents=True, exist_ok=True)
            label.rename(top / "labelsTs" / f"{case_id}.nii.gz")
    description = {"name": "Knee", "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "cartilage"},
                   "numTraining": 2, "numTest": len(listed_test), "training": training, "test": listed_test}
    (top / "dataset.json").write_text(json.dumps(description))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(top.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return out


def test_msd_archives_as_published_show_their_notes_and_test_split(
    chromium, asgi_live_server, celery_worker, make_user, make_project, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    user = make_user("msd-researcher", password=PASSWORD)
    make_project(user, name="MSD project")
    published = msd_archive(tmp_path / "a", tmp_path / "Task09_Knee.zip",
                            listed_test=["./imagesTs/knee_005.nii.gz", "./imagesTs/knee_006.nii.gz"], test_cases={})
    with_tests = msd_archive(tmp_path / "b", tmp_path / "Task09_Knee_with_tests.zip",
                             listed_test=["./imagesTs/knee_003.nii.gz", "./imagesTs/knee_006.nii.gz"],
                             test_cases={"knee_003": True, "knee_004": False})
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(30_000)
            page.goto(base + "/")
            page.fill("#id_username", "msd-researcher")
            page.fill("#id_password", PASSWORD)
            page.click("#sign-in")
            expect(page.get_by_role("link", name="MSD project")).to_be_visible()
            project_url = None
            for archive, name in ((published, "Knee as published"), (with_tests, "Knee with tests")):
                if project_url is None:
                    page.get_by_role("link", name="MSD project").click()
                    project_url = page.url
                else:
                    page.goto(project_url)
                page.click("#upload-dataset")
                expect(page.locator("#upload-form")).to_be_visible()
                page.set_input_files("#id_files", [str(archive)])
                page.fill("#id_name", name)
                page.click("#upload-submit")
                page.wait_for_url("**/datasets/*/", timeout=TIMEOUT_MS)
                expect(page.locator("#dataset-status")).to_have_attribute("data-status", "ready", timeout=TIMEOUT_MS)
                expect(page.locator("#num-cases")).to_have_text("2")
                notes = page.locator("#dataset-notes")
                expect(notes).to_contain_text("knee_006.nii.gz")
                expect(notes).to_contain_text("listed as a test image in dataset.json but not included")
                if archive is published:
                    expect(notes.locator("li")).to_have_count(2)
                    expect(page.locator("#num-test-cases")).to_have_text("0")
                    expect(page.locator("#no-test-split")).to_be_visible()
                else:
                    expect(notes.locator("li")).to_have_count(1)
                    expect(page.locator("#num-test-cases")).to_have_text("2")
                    tests = page.locator("#dataset-test-cases li.test-case")
                    expect(tests).to_have_count(2)
                    ids = tests.evaluate_all("els => els.map(e => e.dataset.caseId)")
                    assert ids == ["knee_003", "knee_004"], ids
                    expect(tests.nth(1)).to_contain_text("no label map")
                    training = page.locator("#dataset-cases li.case")
                    expect(training).to_have_count(2)
                page.screenshot(path=str(shots / f"msd-{'published' if archive is published else 'tests'}.png"), full_page=True)
        except BaseException:
            try:
                page.screenshot(path=str(shots / "msd-failure.png"), full_page=True)
            except Exception:
                pass
            raise
        finally:
            browser.close()
