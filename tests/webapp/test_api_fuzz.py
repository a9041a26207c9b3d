"""A bounded schemathesis fuzz of the whole REST API (issue 14 item 5): 0 server errors allowed.

Against the real ASGI server (``asgi_live_server``: the app as deployed, in its own process)
with an authenticated user (a token), every operation of ``/api/schema/`` gets a few generated
requests: valid ones (``positive``) and invalid ones (``negative``), half of them aimed at
objects that exist (the user's project, a ready dataset with its case, a membership, a run) so
the requests reach the services, not only the 404s. Deleting operations run last.

Bounded in time: ``VOXELSEARCH_FUZZ_EXAMPLES`` (default 6) examples per operation and mode and
id choice, and a wall-clock budget of ``VOXELSEARCH_FUZZ_SECONDS`` (default 150 s) after which
no new operation starts.

Server errors in code this test's author does not own are listed in ``KNOWN_ELSEWHERE`` (with
the file and the cause): every other operation must have none (a failure); when only known ones
remain the test reports them as an expected failure, naming each; when a known one is gone the
test fails until it is taken off the list.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict

import pytest
import requests
import webcorpus as corpus

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = int(os.environ.get("VOXELSEARCH_FUZZ_EXAMPLES", "6"))
BUDGET_SECONDS = float(os.environ.get("VOXELSEARCH_FUZZ_SECONDS", "150"))

#: Operations whose server errors come from files other helpers own (see the report):
#: operation label -> where and why.
KNOWN_ELSEWHERE: dict[str, str] = {}


def _seed(tmp_path_factory):
    """A user with a token, a project with a ready dataset, a viewer membership and a run."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from webapp.datasets import services as dataset_services
    from webapp.projects.models import Membership
    from webapp.projects.services import project_create
    from webapp.runs.models import Run

    users = get_user_model()
    user = users.objects.create_user(username="fuzzer", password="fuzz-pass-1", email="fuzzer@example.org")
    viewer = users.objects.create_user(username="fuzz-viewer", password="fuzz-pass-1", email="v@example.org")
    project = project_create(user=user, name="Fuzzed")
    membership = Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    folder = corpus.msd_folder(tmp_path_factory.mktemp("fuzz-msd") / "Task", n_cases=2)
    dataset = dataset_services.dataset_import_folder(project=project, actor=user, folder=folder, queue=False)
    assert dataset.status == "ready", dataset.problems
    run = Run.objects.create(project=project, dataset=dataset, kind=Run.Kind.SEARCH, method="dints",
                             preset="tiny", name="Fuzzed run", gpu_budget_bytes=8 << 30)
    return {
        "token": Token.objects.create(user=user).key,
        "ids": {
            "/api/projects/": project.pk, "/api/datasets/": dataset.pk, "/api/runs/": run.pk,
            "case_pk": dataset.cases.first().pk, "membership_pk": membership.pk,
        },
    }


def _known_path_parameters(path: str, ids: dict) -> dict:
    params = {}
    for prefix in ("/api/projects/", "/api/datasets/", "/api/runs/"):
        if path.startswith(prefix) and "{id}" in path:
            params["id"] = ids[prefix]
    for name in ("case_pk", "membership_pk"):
        if "{" + name + "}" in path:
            params[name] = ids[name]
    return params


def run_fuzz(base: str, seed: dict) -> dict:
    """Fuzz every operation: {"errors": label -> [(status, request, body)], "calls", "skipped"}."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    headers = {"Authorization": f"Token {seed['token']}"}
    document = requests.get(f"{base}/api/schema/?format=json", headers=headers, timeout=30)
    document.raise_for_status()
    schema = schemathesis.openapi.from_dict(document.json())
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path))  # deletions last
    errors: dict[str, list] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    statuses: dict[int, int] = defaultdict(int)
    started = time.monotonic()
    skipped: list[str] = []
    unbuildable: list[str] = []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if time.monotonic() - started > BUDGET_SECONDS:
            skipped.append(label)
            continue
        known = _known_path_parameters(operation.path, seed["ids"])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in ([known, None] if known else [None]):
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

                @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def call(case):
                    calls[label] += 1
                    try:
                        response = case.call(base_url=base, headers=headers, timeout=60)
                    except requests.RequestException as exc:  # the server dropped or hung
                        errors[label].append((None, f"{case.method} {case.formatted_path}", repr(exc)[:300]))
                        return
                    statuses[response.status_code] += 1
                    if response.status_code >= 500:
                        errors[label].append((response.status_code, f"{case.method} {case.formatted_path}",
                                              response.text[:300]))

                try:
                    call()
                except Unsatisfiable:
                    pass  # e.g. no invalid request exists when the only parameter is a fixed id
                except Exception as exc:  # noqa: BLE001 - a strategy schemathesis cannot build
                    unbuildable.append(f"{label} ({mode.value}): {exc!r}"[:300])
    elapsed = time.monotonic() - started
    print(f"fuzz: {sum(calls.values())} calls over {len(calls)} operations in {elapsed:.0f}s; "
          f"statuses: {dict(sorted(statuses.items()))}; "
          f"skipped for time: {skipped}; cases schemathesis could not build: {unbuildable}; "
          f"server errors: {dict(errors)}")
    return {"errors": dict(errors), "calls": dict(calls), "statuses": dict(statuses), "skipped": skipped,
            "unbuildable": unbuildable}


def test_no_server_error_from_any_input(asgi_live_server, tmp_path_factory):
    results = run_fuzz(asgi_live_server.url, _seed(tmp_path_factory))
    assert not results["skipped"], f"the time budget ran out before {results['skipped']}"
    assert len(results["calls"]) >= 30 and all(n > 0 for n in results["calls"].values()), results["calls"]
    assert results["statuses"].get(401, 0) < sum(results["calls"].values()) / 2, "the token was not accepted"
    ours = {label: found for label, found in results["errors"].items() if label not in KNOWN_ELSEWHERE}
    assert not ours, f"server errors: {ours}"
    fixed = [label for label in KNOWN_ELSEWHERE if not results["errors"].get(label)]
    assert not fixed, f"no longer failing, take them off KNOWN_ELSEWHERE: {fixed}"
    if KNOWN_ELSEWHERE:
        pytest.xfail("server errors only in files other helpers own: " + "; ".join(
            f"{label} ({why}): {results['errors'][label][0]}" for label, why in KNOWN_ELSEWHERE.items()))
