"""Test-split evaluations with a real Celery worker (queue gpu) and the real engine.

A model registered from a retraining run gets an evaluation (post_save, on commit) that the
worker runs: the LCC decision on the validation cases, then each labelled test case scored in
its own geometry. The model page shows the case table, the per-class summary and the box plot;
the CSV downloads; a dataset without labelled test cases gives an honest "no test cases".
"""
from __future__ import annotations

import csv
import io
import shutil

import nibabel as nib
import numpy as np
import pytest
from django.test import Client
from predictiontesting import LABELS, engine_bundle, make_engine_model, oblique_affine, write_volume

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def _dataset(project, demo, *, labelled_test: bool):
    """A ready dataset whose MSD folder is a copy of the demo data; with ``labelled_test`` its
    test image gets a label in labelsTs/ and a second test case has an oblique geometry."""
    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.create(project=project, name="Demo", source="folder", labels=LABELS,
                                     channel_names=["MR"], status=Dataset.Status.READY)
    shutil.copytree(demo, dataset.msd_dir)
    if labelled_test:
        image = sorted((dataset.msd_dir / "imagesTs").glob("*.nii.gz"))[0]
        img = nib.load(str(image))
        data = np.asarray(img.dataobj, dtype=np.float32)
        label = np.zeros(data.shape, np.uint8)
        label[data > np.percentile(data, 70)] = 1
        label[data > np.percentile(data, 95)] = 2
        write_volume(dataset.msd_dir / "labelsTs" / image.name, label, img.affine, identifying=False)
        odd = oblique_affine(spacing=(0.8, 1.3, 2.2))
        write_volume(dataset.msd_dir / "imagesTs" / "oblique_case.nii.gz", data[:30, :26, :20], odd, identifying=False)
        write_volume(dataset.msd_dir / "labelsTs" / "oblique_case.nii.gz", label[:30, :26, :20], odd, identifying=False)
    return dataset


def _wait_final(pk, wait_for, timeout=240):
    from webapp.evaluations.models import Evaluation

    def final():
        evaluation = Evaluation.objects.filter(model_id=pk).first()
        return evaluation if evaluation is not None and evaluation.is_final else None

    return wait_for(final, timeout=timeout, interval=0.5)


def test_registered_model_is_evaluated_by_the_worker_and_shown(celery_worker, make_user, make_project, bundle, wait_for):
    owner = make_user("researcher")
    stranger = make_user("stranger")
    project = make_project(owner, name="Lab")
    dataset = _dataset(project, bundle[1], labelled_test=True)
    model = make_engine_model(project, bundle[0], dataset=dataset, name="Searched model")

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


def test_no_labelled_test_cases_is_said_plainly(celery_worker, make_user, make_project, bundle, wait_for):
    owner = make_user("owner2")
    project = make_project(owner, name="No test split")
    dataset = _dataset(project, bundle[1], labelled_test=False)
    model = make_engine_model(project, bundle[0], dataset=dataset, name="Untested")
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
