"""Fold ensembles on the web with a real Celery worker: "Train folds" makes k ordinary fold
retrainings; the last registered fold queues the ensemble, which is assembled, gets its
post-processing decided on each fold's validation cases and is scored on the test split."""
from __future__ import annotations

import pytest
from django.test import Client
from evaluationtesting import demo_dataset as _dataset
from predictiontesting import engine_bundle, make_engine_model

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def test_fold_ensemble_is_trained_assembled_and_evaluated(celery_worker, make_user, make_project, bundle, wait_for):
    """"Train folds" makes k fold retrainings; the worker trains them, the last registered fold
    queues the ensemble, whose softmax average is scored on the same test split."""
    import json

    from webapp.evaluations.models import FoldSet
    from webapp.runs.models import Run

    owner = make_user("folder")
    project = make_project(owner, name="Folds")
    dataset = _dataset(project, bundle[1], labelled_test=True)
    model = make_engine_model(project, bundle[0], dataset=dataset, name="Architecture")
    run = model.run
    run.genotype = json.loads((model.bundle_path / "genotype.json").read_text())
    run.config = {"steps": 2, "warmup_steps": 1, "lr_milestones": [1], "export": False}
    run.save(update_fields=["genotype", "config"])
    client = Client()
    client.force_login(owner)
    assert 'id="train-folds"' in client.get(f"/models/{model.pk}/").content.decode()
    assert client.post(f"/models/{model.pk}/folds/", {"num_folds": "2"}).status_code == 302
    fold_set = FoldSet.objects.get(model=model)
    folds = list(Run.objects.filter(pk__in=fold_set.run_ids).order_by("pk"))
    assert [r.config["fold"] for r in folds] == [0, 1] and all(r.config["num_folds"] == 2 for r in folds)
    assert all(r.preset == run.preset and r.dataset_id == dataset.pk for r in folds)

    done = wait_for(lambda: FoldSet.objects.filter(pk=fold_set.pk, status__in=["succeeded", "failed"]).first(),
                    timeout=400, interval=0.5)
    assert done.status == "succeeded", (done.error, [(r.pk, r.refresh_from_db() or r.status, r.error) for r in folds],
                                        celery_worker.output()[-3000:])
    ensemble = json.loads((done.ensemble_path / "ensemble.json").read_text())
    assert len(ensemble["members"]) == 2 and (done.ensemble_path / "postprocessing.json").is_file()
    recorded = json.loads((folds[0].bundle_dir / "bundle.json").read_text())["source"]["test_cases"]
    assert len(done.report["models"]) == 2
    assert [c["id"] for c in done.report["cases"]] == [c["id"] for c in recorded if c.get("label")]
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="ensemble-summary"' in page and 'id="train-folds"' not in page
