"""Test-split evaluations with a real Celery worker (queue gpu) and the real engine.

A model registered from a retraining run gets an evaluation (post_save, on commit) that the
worker runs: the LCC decision on the validation cases, then each labelled test case scored in
its own geometry. The model page shows the case table, the per-class summary and the box plot;
the CSV downloads; a dataset without labelled test cases gives an honest "no test cases".
"""
from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from evaluationtesting import bundle_with_test_split
from evaluationtesting import demo_dataset as _dataset
from predictiontesting import engine_bundle, make_engine_model

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def _wait_final(pk, wait_for, timeout=240):
    from webapp.evaluations.models import Evaluation

    def final():
        evaluation = Evaluation.objects.filter(model_id=pk).first()
        return evaluation if evaluation is not None and evaluation.is_final else None

    return wait_for(final, timeout=timeout, interval=0.5)


def test_registered_model_is_evaluated_by_the_worker_and_shown(celery_worker, make_user, make_project, bundle, wait_for,
                                                                tmp_path):
    owner = make_user("researcher")
    stranger = make_user("stranger")
    project = make_project(owner, name="Lab")
    dataset = _dataset(project, bundle[1], labelled_test=True)
    model = make_engine_model(project, bundle_with_test_split(bundle[0], tmp_path / "bundle"), dataset=dataset,
                              name="Searched model")

    evaluation = _wait_final(model.pk, wait_for)
    assert evaluation.status == "succeeded", (evaluation.error, celery_worker.output()[-3000:])
    report = evaluation.report
    assert evaluation.n_cases == 2 and {c["id"] for c in report["cases"]} == {"demo_test_000", "oblique_case"}
    oblique = next(c for c in report["cases"] if c["id"] == "oblique_case")
    assert oblique["shape"] == [30, 26, 20] and oblique["spacing_mm"] == pytest.approx([0.8, 1.3, 2.2], rel=1e-5)
    assert report["settings"]["nsd_tolerance_mm"] == 1.0 and report["classes"] == ["organ", "lesion"]
    assert report["model_figures"]["parameters"] > 0
    assert (model.bundle_path / "postprocessing.json").is_file()  # decided on the validation cases
    assert evaluation.postprocessing["decided_on"]["source"] == "validation"

    from webapp.evaluations.selectors import summary_for_model

    summary = summary_for_model(model)
    assert summary["n_cases"] == 2 and set(summary["classes"]) == {"organ", "lesion"}
    assert summary["mean_dice"] == pytest.approx(report["mean_dice"])

    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="evaluation-cases"' in page and "oblique_case" in page and "demo_test_000" in page
    assert 'id="evaluation-summary"' in page and '<svg id="evaluation-boxplot"' in page
    assert "surface Dice counts boundary within 1.0 mm" in page
    assert 'id="validation-case-count"' in page and "validation case" in page
    assert 'id="train-controls"' in page

    response = client.get(f"/models/{model.pk}/evaluation.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "_test_evaluation.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["case", "class", "dice", "hd95_mm", "nsd_at_1mm"]
    assert len(rows) == 1 + 2 * 2
    first = next(r for r in rows[1:] if r[0] == "oblique_case" and r[1] == "organ")
    expected = oblique["classes"]["organ"]["dice"]
    assert (first[2] == "" and expected is None) or float(first[2]) == pytest.approx(expected, rel=1e-5)

    other = Client()
    other.force_login(stranger)
    assert other.get(f"/models/{model.pk}/evaluation.csv").status_code == 404


def test_no_labelled_test_cases_is_said_plainly(celery_worker, make_user, make_project, bundle, wait_for, tmp_path):
    owner = make_user("owner2")
    project = make_project(owner, name="No test split")
    dataset = _dataset(project, bundle[1], labelled_test=False)
    untested = bundle_with_test_split(bundle[0], tmp_path / "bundle", cases=[])  # a model trained with no test split
    model = make_engine_model(project, untested, dataset=dataset, name="Untested")
    evaluation = _wait_final(model.pk, wait_for)
    assert evaluation.status == "skipped", (evaluation.error, celery_worker.output()[-3000:])
    assert "no labelled test cases" in evaluation.error
    client = Client()
    client.force_login(owner)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="evaluation-skipped"' in page and "no labelled test cases" in page
    assert 'id="evaluation-cases"' not in page
    assert client.get(f"/models/{model.pk}/evaluation.csv").status_code == 404
    # evaluate again: a fresh, queued evaluation the worker runs
    response = client.post(f"/models/{model.pk}/evaluation/retry/")
    assert response.status_code == 302
    assert _wait_final(model.pk, wait_for).status == "skipped"


def test_train_controls_one_click_then_side_by_side(celery_worker, make_user, make_project, bundle, wait_for, tmp_path):
    """The "Train controls" button makes two ordinary retraining runs with the searched model's
    recipe, steps, seed, data and budget; the worker trains them, they are registered and
    evaluated, and the model page shows the three side by side on the test split."""
    import json

    from webapp.evaluations.models import ControlSet
    from webapp.runs.models import Run

    owner = make_user("searcher")
    project = make_project(owner, name="Controls")
    dataset = _dataset(project, bundle[1], labelled_test=True)
    model = make_engine_model(project, bundle_with_test_split(bundle[0], tmp_path / "bundle"), dataset=dataset,
                              name="Searched")
    run = model.run
    genotype = json.loads((model.bundle_path / "genotype.json").read_text())
    search = Run.objects.create(project=project, dataset=dataset, kind=Run.Kind.SEARCH, method="dints", preset="tiny",
                                config={"search_steps": 2}, gpu_budget_bytes=8 << 30, genotype=genotype)
    run.genotype, run.source_run = genotype, search
    run.config = {"steps": 2, "warmup_steps": 1, "lr_milestones": [1], "export": False}
    run.save(update_fields=["genotype", "config", "source_run"])
    assert _wait_final(model.pk, wait_for).status == "succeeded"

    client = Client()
    client.force_login(owner)
    response = client.post(f"/models/{model.pk}/controls/")
    assert response.status_code == 302
    controls = ControlSet.objects.get(model=model)
    random_run, hand_run = controls.random_run, controls.handdesigned_run
    for control in (random_run, hand_run):
        assert control.kind == Run.Kind.RETRAIN and control.dataset_id == dataset.pk and control.status == "queued"
        assert control.gpu_budget_bytes == run.gpu_budget_bytes and control.parent_id == run.pk
        for key in ("steps", "warmup_steps", "lr_milestones", "seed"):  # the same recipe and steps
            assert control.resolved_config[key] == random_run.resolved_config[key], key
    assert random_run.preset == run.preset and random_run.config == run.config
    assert random_run.genotype["method"] == "dints" and random_run.genotype["meta"]["control"] == "random"
    assert hand_run.genotype["method"] == "handdesigned" and hand_run.genotype["meta"]["control"] == "handdesigned"
    # a second click does not launch twice
    client.post(f"/models/{model.pk}/controls/")
    assert ControlSet.objects.filter(model=model).count() == 1
    assert Run.objects.filter(parent=run).count() == 2

    for control in (random_run, hand_run):
        done = wait_for(lambda c=control: Run.objects.filter(pk=c.pk, status__in=["succeeded", "failed"]).first(),
                        timeout=300, interval=0.5)
        assert done.status == "succeeded", (done.error, celery_worker.output()[-3000:])
        assert _wait_final(done.trained_model.pk, wait_for).status == "succeeded"
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="controls-table"' in page
    assert "(a) random architecture" in page and "(b) hand-designed network" in page
    assert 'id="train-controls"' not in page
    control_page = client.get(f"/models/{hand_run.trained_model.pk}/").content.decode()
    assert "This model is a control of another model." in control_page

