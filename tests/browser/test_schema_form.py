"""In headless Chromium, the launch form's schema renderer (frontend/static/js/runs/schema-form.js)
alone, on a page of the project's own modules (browsertesting.open_module_page):

- a synthetic schema with every construct of docs/PLUGIN-SURFACE.md "What the launch form
  renders" (nested objects, string arrays, enum arrays as checkboxes, fixed-length and
  prefixItems arrays, nullable fields, help, x-advanced, additionalProperties rows) renders, is
  edited as a user would, and reads back into exactly the JSON the API takes;
- errors by dotted path land at the field (or its nearest enclosing field);
- every registered method's search and retraining schemas, filled with each preset's values,
  read back unchanged (a value the form would mangle fails here).

The DiNTS launch page itself (the real catalogue, estimate, submit) is driven by
test_researcher_loop.py.
"""
from __future__ import annotations

import json

import pytest
from browsertesting import CHROMIUM_ARGS, open_module_page

pytestmark = [pytest.mark.browser]

SYNTHETIC = {
    "type": "object",
    "properties": {
        "steps": {"title": "Steps", "type": "integer", "minimum": 1, "maximum": 100, "default": 10,
                  "description": "Training steps after the warm-up."},
        "rate": {"type": "number", "minimum": 0, "default": 0.1},
        "amp": {"type": "boolean", "default": True},
        "label": {"type": "string", "default": "net"},
        "optimiser": {"enum": ["sgd", "adam"], "default": "sgd"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
        "ops": {"type": "array", "items": {"enum": ["skip", "conv_3x3x3", "p3d_3x3x1"]}, "minItems": 1,
                "default": ["skip"]},
        "patch": {"type": "array", "items": {"type": "integer", "minimum": 8}, "minItems": 3, "maxItems": 3,
                  "default": [32, 32, 16]},
        "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"enum": ["up", "down"]}], "default": [2, "down"]},
        "crop": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None},
        "schedule": {"type": "object", "title": "Temperature schedule", "properties": {
            "start": {"type": "number", "default": 5.0},
            "end": {"type": "number", "default": 0.5},
            "shape": {"type": "object", "properties": {"kind": {"enum": ["linear", "exp"], "default": "linear"}}},
        }},
        "weights": {"type": "object", "additionalProperties": {"type": "number"}, "default": {"entropy": 1.0}},
        "debug_every": {"type": "integer", "minimum": 0, "default": 0, "x-advanced": True},
    },
}

FORM_PAGE = """
<fieldset class="schema-form" id="form"><legend>Settings</legend></fieldset>
<script type="module">
import { renderSchemaForm } from '/static/js/runs/schema-form.js';
window.render = (schema, values) => {
  window.form = renderSchemaForm(document.getElementById('form'), schema, values, { skip: ['seed'] });
  return Object.keys(window.form.fields).filter((k) => !k.includes('.')).length;
};
window.readForm = () => window.form.read();
window.ready = true;
</script>
"""


@pytest.fixture
def form_page(chromium):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 1000})
            page = open_module_page(context, FORM_PAGE)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.wait_for_function("() => window.ready === true")
            yield page
        finally:
            browser.close()
    assert not errors, errors


def test_every_construct_renders_and_reads_back_the_json_the_api_takes(form_page, tmp_path):
    page = form_page
    page.evaluate("(s) => window.render(s, {})", SYNTHETIC)
    # Untouched, the form reads back the defaults.
    untouched = page.evaluate("window.readForm()")
    assert untouched["bad"] == {}
    assert untouched["values"] == {
        "steps": 10, "rate": 0.1, "amp": True, "label": "net", "optimiser": "sgd", "tags": ["a", "b"],
        "ops": ["skip"], "patch": [32, 32, 16], "pair": [2, "down"], "crop": None,
        "schedule": {"start": 5.0, "end": 0.5, "shape": {"kind": "linear"}}, "weights": {"entropy": 1.0},
        "debug_every": 0,
    }
    # What each construct looks like: help text, a checkbox per enum value, one box per fixed
    # item, a nested fieldset (twice), a "none" toggle, Advanced folded away.
    assert page.inner_text("[data-field=steps] .help") == "Training steps after the warm-up."
    assert page.locator("#cfg-ops input[type=checkbox]").count() == 3
    assert page.locator("[data-field=patch] .array-row input[type=number]").count() == 3
    assert page.locator("[data-field=pair] select").count() == 1
    assert page.inner_text("fieldset[data-field=schedule] > legend") == "Temperature schedule"
    assert page.locator("fieldset[data-field='schedule.shape'] select#cfg-schedule__shape__kind").count() == 1
    assert page.is_checked("#cfg-crop__none") and page.is_disabled("#cfg-crop")
    assert not page.is_visible("#cfg-debug_every")

    # Edit every field as a user would.
    page.fill("#cfg-steps", "12")
    page.uncheck("#cfg-amp")
    page.select_option("#cfg-optimiser", '"adam"')
    page.fill("#cfg-tags", "dice, focal loss")
    page.check("#cfg-ops__1")
    page.fill("#cfg-patch__2", "24")
    page.select_option("#cfg-pair__1", '"up"')
    page.uncheck("#cfg-crop__none")
    page.fill("#cfg-crop", "48")
    page.fill("#cfg-schedule__start", "4")
    page.select_option("#cfg-schedule__shape__kind", '"exp"')
    page.click("[data-field=weights] .map-add")
    row = page.locator("[data-field=weights] .map-row").nth(1)
    row.locator(".map-key").fill("memory")
    row.locator("input[type=number]").fill("0.25")
    page.click(".schema-advanced > summary")
    page.fill("#cfg-debug_every", "5")
    page.screenshot(path=str(tmp_path / "schema-form.png"), full_page=True)

    edited = page.evaluate("window.readForm()")
    assert edited["bad"] == {}
    assert edited["values"] == {
        "steps": 12, "rate": 0.1, "amp": False, "label": "net", "optimiser": "adam", "tags": ["dice", "focal loss"],
        "ops": ["skip", "conv_3x3x3"], "patch": [32, 32, 24], "pair": [2, "up"], "crop": 48,
        "schedule": {"start": 4, "end": 0.5, "shape": {"kind": "exp"}},
        "weights": {"entropy": 1.0, "memory": 0.25}, "debug_every": 5,
    }
    # The values are JSON: through JSON.stringify and back nothing changes.
    assert json.loads(page.evaluate("JSON.stringify(window.readForm().values)")) == edited["values"]

    # A value the form cannot send is named by its path, not sent.
    page.uncheck("#cfg-ops__0")
    page.uncheck("#cfg-ops__1")
    page.fill("#cfg-schedule__end", "")
    bad = page.evaluate("window.readForm()")
    assert set(bad["bad"]) == {"ops", "schedule.end"}, bad
    assert "ops" not in bad["values"] and "end" not in bad["values"]["schedule"]


def test_errors_by_dotted_path_show_at_the_field_or_its_nearest_enclosing_one(form_page):
    page = form_page
    page.evaluate("(s) => window.render(s, {})", SYNTHETIC)
    page.evaluate("window.form.setErrors({'schedule.start': 'Must be below 10.', 'schedule.shape.kind.extra': 'Unknown.', 'steps': 'Too many.'})")
    assert page.inner_text("[data-field='schedule.start'] > .field-error") == "Must be below 10."
    assert page.inner_text("[data-field='schedule.shape.kind'] > .field-error") == "Unknown."
    assert page.locator(".schema-field.invalid").count() == 3
    page.evaluate("window.form.setErrors({})")
    assert page.locator(".schema-field.invalid").count() == 0


def _registered_schemas() -> list[tuple[str, dict, dict]]:
    """(label, schema, values) for every registered method's search schema at each preset and its
    retraining schema at each retraining preset, the values as the web app resolves them."""
    from nasengine.api import list_methods, retrain_schema
    from webapp.runs import engine

    cases = []
    for method in list_methods():
        for preset in method["presets"]:
            _, values = engine.search_config(method["name"], preset, {})
            cases.append((f"{method['name']} search {preset}", method["schema"], values))
        schema = retrain_schema(method["name"])
        for preset in schema.get("x-presets", {}):
            _, values = engine.retrain_config(preset, {}, method=method["name"])
            cases.append((f"{method['name']} retrain {preset}", schema, values))
    return cases


def test_every_registered_methods_schemas_read_back_each_presets_values(form_page):
    cases = _registered_schemas()
    assert any(label.startswith("dints search") for label, _, _ in cases), [c[0] for c in cases]
    for label, schema, values in cases:
        values = json.loads(json.dumps(values))  # tuples as the API sends them: lists
        shown = page_render(form_page, schema, values)
        assert shown == len([k for k in schema["properties"] if k != "seed"]), label
        read = form_page.evaluate("window.readForm()")
        expected = {k: values[k] for k in schema["properties"] if k != "seed" and k in values}
        assert read["bad"] == {}, (label, read["bad"])
        assert {k: read["values"][k] for k in expected} == expected, label


def page_render(page, schema: dict, values: dict) -> int:
    """Render ``schema`` with ``values``; returns the number of top-level fields drawn."""
    return page.evaluate("([s, v]) => window.render(s, v)", [schema, values])
