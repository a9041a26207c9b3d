"""In a real browser: upload a volume to a model, see the segmentation drawn over it in NiiVue,
change the overlay opacity, download the label NIfTI.

Headless Debian chromium (Playwright, sync API) against the real ASGI server and a real Celery
worker; the model is a real bundle made by the engine (tests/predictiontesting.py). NiiVue is
the npm package's dist/index.js that `npm ci && npm run build` in frontend/ copies to
frontend/static/vendor/niivue/niivue.js (scripts/test does it). Without chromium or that file the
test is skipped, except when VOXELSEARCH_REQUIRE_BROWSER=1 (CI), where it fails.

Set VOXELSEARCH_SCREENSHOT_DIR to keep the screenshots.
"""
from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from browsertesting import CHROMIUM_ARGS, overlay_pixels, sign_in
from predictiontesting import dast_engine_bundle, engine_bundle, input_volume, make_engine_model

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "viewer-in-a-browser-1"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def test_prediction_overlay_is_drawn_and_follows_the_opacity_slider(
    chromium_with_viewer, asgi_live_server, celery_worker, make_user, make_project, bundle, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    # Database work happens before Playwright starts (its sync API runs an event loop).
    user = make_user("radiologist", password=PASSWORD)
    project = make_project(user, name="Viewer project")
    model = make_engine_model(project, bundle[0], name="Organ model")
    scan = input_volume(bundle[1], tmp_path / "scan.nii.gz")
    from webapp.common.colours import legend

    colours = legend(model.label_names)
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = asgi_live_server.url
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_with_viewer, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))

            sign_in(page, base, "radiologist", PASSWORD)
            page.click("#nav-predictions")
            page.locator(f'#model-choices li[data-model-id="{model.pk}"] a.button').click()
            expect(page.locator("#predict-form")).to_be_visible()
            page.set_input_files("#id_files", [str(scan)])
            page.screenshot(path=str(shots / "predict-form.png"), full_page=True)
            page.click("#predict-submit")

            # The prediction page: queued/running, then it reloads itself with the viewer.
            page.wait_for_url("**/predictions/*/", timeout=TIMEOUT_MS)
            expect(page.locator("#prediction-status")).to_have_attribute("data-status", "succeeded", timeout=TIMEOUT_MS)
            canvas = page.locator("#viewer-canvas")
            expect(canvas).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
            expect(page.locator("#volume-table")).to_contain_text("organ")
            expect(page.locator("#volume-table")).to_contain_text("lesion")

            def counts(opaque=False):
                return overlay_pixels(canvas.screenshot(), colours, opaque=opaque)

            def settle(predicate, what):
                seen = None
                for _ in range(40):
                    seen = counts(opaque=what == "opaque")
                    if predicate(seen):
                        return seen
                    page.wait_for_timeout(250)
                raise AssertionError(f"overlay never {what}: {seen}")

            drawn = settle(lambda c: c[1] + c[2] > 200, "drawn")
            page.screenshot(path=str(shots / "prediction-viewer.png"), full_page=True)
            canvas.screenshot(path=str(shots / "prediction-canvas.png"))

            # Opacity 0: the overlay disappears; 1: the class colours themselves appear.
            slider = page.locator("#overlay-opacity")
            slider.focus()
            page.keyboard.press("Home")
            expect(canvas).to_have_attribute("data-opacity", "0")
            hidden = settle(lambda c: c[1] + c[2] < 0.02 * (drawn[1] + drawn[2]), "hidden")
            page.keyboard.press("End")
            expect(canvas).to_have_attribute("data-opacity", "1")
            opaque = settle(lambda c: c[1] + c[2] > 200, "opaque")
            canvas.screenshot(path=str(shots / "prediction-canvas-opaque.png"))
            expect(page.locator("#overlay-opacity-value")).to_have_text("1.00")

            # Download the label map.
            with page.expect_download() as info:
                page.click("#download-label")
            download = info.value
            saved = tmp_path / "downloaded_label.nii.gz"
            download.save_as(saved)
            assert download.suggested_filename == "scan_label.nii.gz"
        except BaseException:
            try:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
            except Exception:
                pass
            raise
        finally:
            browser.close()

    errors = [e for e in console_errors if "WebSocket" not in e]
    assert not errors, f"errors in the browser console: {errors}"
    label, source = nib.load(str(saved)), nib.load(str(scan))
    assert label.shape == source.shape and np.allclose(label.affine, source.affine, atol=1e-5)
    assert set(np.unique(np.asarray(label.dataobj)).tolist()) & {1, 2}
    print(f"overlay pixels: drawn {drawn}, opacity 0 {hidden}, opacity 1 {opaque}; screenshots in {shots}")


# ---- DAST: attention maps as a heat map ------------------------------------------------------

def heat_pixels(with_map: bytes, without_map: bytes) -> tuple[int, int]:
    """(pixels the heat map changed, of which in heat-map colours): pixels that differ between the
    two canvas shots by more than 40 in some channel, and among them those whose colour runs
    red >= green >= blue with red above 100 (the 'warm' colour map: orange to yellow)."""
    import io

    from PIL import Image

    on = np.asarray(Image.open(io.BytesIO(with_map)).convert("RGB")).astype(np.int32).reshape(-1, 3)
    off = np.asarray(Image.open(io.BytesIO(without_map)).convert("RGB")).astype(np.int32).reshape(-1, 3)
    changed = np.abs(on - off).max(axis=1) > 40
    hot = (on[:, 0] >= on[:, 1] - 8) & (on[:, 1] >= on[:, 2] - 8) & (on[:, 0] > 100) & (on[:, 0] - on[:, 2] > 40)
    return int(changed.sum()), int((changed & hot).sum())


@pytest.fixture(scope="session")
def dast_bundle(tmp_path_factory):
    return dast_engine_bundle(tmp_path_factory)


def test_attention_heat_map_is_drawn_with_a_layer_picker_and_opacity(
    chromium_with_viewer, asgi_live_server, celery_worker, make_user, make_project, dast_bundle, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    user = make_user("attention-reader", password=PASSWORD)
    project = make_project(user, name="Attention project")
    model = make_engine_model(project, dast_bundle[0], name="DAST model")
    scan = input_volume(dast_bundle[1], tmp_path / "scan.nii.gz")
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_with_viewer, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            sign_in(page, asgi_live_server.url, "attention-reader", PASSWORD)
            page.goto(asgi_live_server.url + f"/models/{model.pk}/predict/")
            expect(page.locator("#attention-picker input[name=attention]").first).to_be_visible()
            page.set_input_files("#id_files", [str(scan)])
            page.click("#predict-submit")  # no op ticked: every transformer op's map

            page.wait_for_url("**/predictions/*/", timeout=TIMEOUT_MS)
            expect(page.locator("#prediction-status")).to_have_attribute("data-status", "succeeded", timeout=TIMEOUT_MS)
            canvas = page.locator("#viewer-canvas")
            expect(canvas).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
            layer = page.locator("#attention-layer")
            ids = [v for v in layer.locator("option").evaluate_all("os => os.map(o => o.value)") if v]
            assert len(ids) >= 2, ids
            expect(canvas).to_have_attribute("data-attention", ids[0], timeout=TIMEOUT_MS)
            expect(canvas).to_have_attribute("data-attention-ready", "true")

            slider = page.locator("#attention-opacity")
            slider.focus()
            page.keyboard.press("End")
            expect(canvas).to_have_attribute("data-attention-opacity", "1")
            page.wait_for_timeout(300)
            first_on = canvas.screenshot()
            canvas.screenshot(path=str(shots / "attention-canvas.png"))
            page.screenshot(path=str(shots / "attention-page.png"), full_page=True)

            layer.select_option("")  # none: the image and the segmentation only
            expect(canvas).to_have_attribute("data-attention", "")
            expect(canvas).to_have_attribute("data-attention-ready", "true")
            page.wait_for_timeout(300)
            off = canvas.screenshot()
            changed, hot = heat_pixels(first_on, off)
            assert changed > 300 and hot > 0.6 * changed, (changed, hot)

            layer.select_option(ids[-1])  # the layer picker shows another op's map
            expect(canvas).to_have_attribute("data-attention", ids[-1])
            expect(canvas).to_have_attribute("data-attention-ready", "true")
            page.wait_for_timeout(300)
            last_on = canvas.screenshot()
            changed_last, hot_last = heat_pixels(last_on, off)
            assert changed_last > 300 and hot_last > 0.6 * changed_last, (changed_last, hot_last)
            assert heat_pixels(last_on, first_on)[0] > 100  # a different map, drawn differently

            slider.focus()
            page.keyboard.press("Home")  # opacity 0: the heat map disappears
            expect(canvas).to_have_attribute("data-attention-opacity", "0")
            page.wait_for_timeout(300)
            assert heat_pixels(canvas.screenshot(), off)[0] < 0.02 * changed_last

            with page.expect_download() as info:
                page.locator(f'#attention-downloads li[data-attention-id="{ids[0]}"] a').click()
            saved = tmp_path / "attention.nii.gz"
            info.value.save_as(saved)
            assert info.value.suggested_filename.startswith("scan_attention_")
        except BaseException:
            try:
                page.screenshot(path=str(shots / "attention-failure.png"), full_page=True)
            except Exception:
                pass
            raise
        finally:
            browser.close()

    errors = [e for e in console_errors if "WebSocket" not in e]
    assert not errors, f"errors in the browser console: {errors}"
    heat, source = nib.load(str(saved)), nib.load(str(scan))
    assert heat.shape == source.shape and np.allclose(heat.affine, source.affine, atol=1e-5)
    print(f"heat map pixels: first {changed} ({hot} hot), last {changed_last} ({hot_last} hot); screenshots in {shots}")


# ---- the palette and the crosshair (issue 13.5) ------------------------------------------------

def _prediction_with_a_big_label(model):
    """A succeeded prediction whose label covers the volume's centre (where the viewer opens):
    class 1 a central block, class 2 a slab beside it, over a mid-grey volume."""
    from predictiontesting import make_prediction, write_volume

    prediction = make_prediction(model)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    write_volume(prediction.input_file, np.full((16, 16, 16), 100.0, np.float32), affine, identifying=False)
    label = np.zeros((16, 16, 16), np.uint8)
    label[5:11, 5:11, 5:11] = 1
    label[11:15, 5:11, 5:11] = 2
    write_volume(prediction.output_file, label, affine, identifying=False)
    prediction.attention_maps = []
    prediction.save()
    return prediction


def test_okabe_ito_palette_per_class_colour_editing_and_crosshair_toggle(
    chromium_with_viewer, asgi_live_server, make_user, make_project, media_root, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    from webapp.common.colours import legend
    from webapp.datasets.models import Dataset
    from webapp.mlmodels.models import TrainedModel
    from webapp.runs.models import Run

    user = make_user("palette-reader", password=PASSWORD)
    project = make_project(user, name="Palette project")
    dataset = Dataset.objects.create(project=project, name="D", source="folder", status="ready")
    run = Run.objects.create(project=project, dataset=dataset, kind="retrain", method="dints", preset="tiny", gpu_budget_bytes=1)
    model = TrainedModel.objects.create(project=project, run=run, dataset=dataset, name="Palette model", bundle_dir="x",
                                        label_names={"0": "background", "1": "organ", "2": "lesion"})
    prediction = _prediction_with_a_big_label(model)
    colours = legend(model.label_names)
    assert [c["hex"] for c in colours] == ["#e69f00", "#56b4e9"]  # Okabe-Ito orange and sky blue
    shots = Path(os.environ.get("VOXELSEARCH_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_with_viewer, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            sign_in(page, asgi_live_server.url, "palette-reader", PASSWORD)
            page.goto(f"{asgi_live_server.url}/predictions/{prediction.pk}/")
            canvas = page.locator("#viewer-canvas")
            expect(canvas).to_have_attribute("data-ready", "true", timeout=TIMEOUT_MS)
            expect(canvas).to_have_attribute("data-crosshair", "on")

            def settle(predicate, what, palette):
                seen = None
                for _ in range(40):
                    seen = overlay_pixels(canvas.screenshot(), palette)
                    if predicate(seen):
                        return seen
                    page.wait_for_timeout(250)
                raise AssertionError(f"overlay never {what}: {seen}")

            drawn = settle(lambda c: c[1] > 200 and c[2] > 50, "drawn in Okabe-Ito", colours)
            canvas.screenshot(path=str(shots / "palette-default.png"))

            # Class 1 recoloured in the legend: the overlay follows at once, class 2 stays.
            page.locator('#viewer-legend input[data-label-value="1"]').fill("#cc79a7")
            expect(page.locator('#viewer-legend li[data-label-value="1"]')).to_have_attribute("data-rgb", "204,121,167")
            purple = [{**colours[0], "rgb": [204, 121, 167]}, colours[1]]
            recoloured = settle(lambda c: c[1] > 200 and c[2] > 50, "recoloured", purple)
            assert settle(lambda c: c[1] < 0.05 * drawn[1], "orange gone", colours)[2] > 50
            canvas.screenshot(path=str(shots / "palette-edited.png"))

            # Crosshair off: only its thin lines change (the overlay stays); on again: back.
            def shot():
                from PIL import Image

                page.wait_for_timeout(300)
                return np.asarray(Image.open(__import__("io").BytesIO(canvas.screenshot())).convert("RGB")).astype(int)

            with_lines = shot()
            page.uncheck("#crosshair-toggle")
            expect(canvas).to_have_attribute("data-crosshair", "off")
            without_lines = shot()
            changed = np.abs(with_lines - without_lines).max(axis=2) > 30
            height, width = changed.shape
            assert changed.sum() > height, "the crosshair did not disappear"  # at least one line's worth
            assert changed.sum() < 0.05 * height * width, "more than thin lines changed"
            page.check("#crosshair-toggle")
            expect(canvas).to_have_attribute("data-crosshair", "on")
            assert np.abs(shot() - with_lines).max(axis=2).__gt__(30).sum() < 0.2 * changed.sum()
            print(f"overlay pixels: default {drawn}, recoloured {recoloured}; crosshair pixels {int(changed.sum())}")
        except BaseException:
            try:
                page.screenshot(path=str(shots / "palette-failure.png"), full_page=True)
            except Exception:
                pass
            raise
        finally:
            browser.close()
    errors = [e for e in console_errors if "WebSocket" not in e]
    assert not errors, f"errors in the browser console: {errors}"
