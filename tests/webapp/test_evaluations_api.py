"""The evaluation service run in-process (what the worker task calls) and the REST read of a
model's evaluation: members get status, summary and report; others get 404."""
from __future__ import annotations

import pytest
from django.test import Client
from evaluationtesting import bundle_with_test_split, demo_dataset
from predictiontesting import engine_bundle, make_engine_model

# Not a transactional test: the session's Celery worker (started by other tests) cannot see these
# rows, so the evaluation stays queued until this test runs the service itself.
pytestmark = [pytest.mark.django_db]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    return engine_bundle(tmp_path_factory)


def test_evaluation_api(make_user, make_project, bundle, tmp_path, django_capture_on_commit_callbacks):
    from webapp.evaluations import services
    from webapp.evaluations.models import Evaluation

    owner, stranger = make_user("owner"), make_user("stranger")
    project = make_project(owner, name="API")
    dataset = demo_dataset(project, bundle[1], labelled_test=True)
    with django_capture_on_commit_callbacks(execute=True):
        model = make_engine_model(project, bundle_with_test_split(bundle[0], tmp_path / "b"), dataset=dataset)
    evaluation = Evaluation.objects.get(model=model)  # created by the post_save signal on commit
    client = Client()
    client.force_login(owner)
    body = client.get(f"/api/models/{model.pk}/evaluation/").json()
    assert body["status"] == "queued" and body["summary"] is None

    from django.utils import timezone

    from webapp.evaluations.tasks import run_evaluation

    assert (run_evaluation.name, evaluation.pk) in services.waiting_jobs(timezone.now())  # for the queue sweep
    services.evaluation_run(evaluation_id=evaluation.pk)
    assert (run_evaluation.name, evaluation.pk) not in services.waiting_jobs(timezone.now())
    body = client.get(f"/api/models/{model.pk}/evaluation/").json()
    assert body["status"] == "succeeded" and body["n_cases"] == 2
    assert set(body["summary"]["classes"]) == {"organ", "lesion"}
    assert body["report"]["settings"]["nsd_tolerance_mm"] == 1.0
    assert body["summary"]["parameters"] == body["report"]["model_figures"]["parameters"]
    # delivered again (acks late): a final evaluation is left alone
    assert services.evaluation_run(evaluation_id=evaluation.pk).status == "succeeded"

    other = Client()
    other.force_login(stranger)
    assert other.get(f"/api/models/{model.pk}/evaluation/").status_code == 404
    assert Client().get(f"/api/models/{model.pk}/evaluation/").status_code in (401, 403)
