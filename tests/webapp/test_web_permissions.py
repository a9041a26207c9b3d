"""Access rules over EVERY route (pages, API, WebSocket).

* another project's object answers 404 (not 403) everywhere;
* anonymous users are sent to the sign-in page (pages) or get 401 (API);
* viewers can read but every write answers 403; owner-only actions refuse editors too.

``ROUTES`` lists every URL pattern of the project; ``test_every_route_is_covered`` fails when a
route is added without being listed here, so new routes (runs, models, ...) get these checks.
"""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.urls import URLPattern, URLResolver, get_resolver

from webapp.datasets.models import Case, Dataset
from webapp.projects.models import Membership, Project

pytestmark = pytest.mark.django_db

# (route name, method, URL template, kind, access)
#   kind: "page" | "api";  access: "read" | "write" | "owner" (object routes), "user", "public"
ROUTES = [
    ("home", "get", "/", "page", "user"),
    ("accounts:login", "get", "/accounts/login/", "page", "public"),
    ("accounts:logout", "post", "/accounts/logout/", "page", "public"),
    ("accounts:token", "get", "/accounts/token/", "page", "user"),
    ("accounts:token", "post", "/accounts/token/", "page", "user"),
    ("projects:list", "get", "/projects/", "page", "user"),
    ("projects:list", "post", "/projects/", "page", "user"),
    ("projects:detail", "get", "/projects/{project}/", "page", "read"),
    ("projects:delete", "post", "/projects/{project}/delete/", "page", "owner"),
    ("projects:member-invite", "post", "/projects/{project}/members/", "page", "owner"),
    ("projects:member-role", "post", "/projects/{project}/members/{owner_membership}/role/", "page", "owner"),
    ("projects:member-remove", "post", "/projects/{project}/members/{owner_membership}/remove/", "page", "owner"),
    # invitations (issue 14, F9): the invitee's own pages; tests/webapp/test_accounts_invitations.py
    # checks that nobody else reaches an invitation.
    ("projects:invitations", "get", "/projects/invitations/", "page", "user"),
    ("projects:invitation-accept", "post", "/projects/invitations/{invitation}/accept/", "page", "user"),
    ("projects:invitation-decline", "post", "/projects/invitations/{invitation}/decline/", "page", "user"),
    ("projects:invitation-withdraw", "post", "/projects/{project}/invitations/{invitation}/withdraw/", "page", "owner"),
    ("datasets:list", "get", "/datasets/", "page", "user"),
    ("datasets:upload", "get", "/projects/{project}/datasets/upload/", "page", "write"),
    ("datasets:upload", "post", "/projects/{project}/datasets/upload/", "page", "write"),
    ("datasets:detail", "get", "/datasets/{dataset}/", "page", "read"),
    ("datasets:delete", "get", "/datasets/{dataset}/delete/", "page", "write"),
    ("datasets:delete", "post", "/datasets/{dataset}/delete/", "page", "write"),
    ("datasets:case-preview", "get", "/datasets/{dataset}/cases/{case}/preview.png", "page", "read"),
    ("api-schema", "get", "/api/schema/", "api", "user"),
    ("api-docs", "get", "/api/docs/", "page", "user"),
    ("api:token", "post", "/api/auth/token/", "api", "public"),
    ("api:projects", "get", "/api/projects/", "api", "user"),
    ("api:projects", "post", "/api/projects/", "api", "user"),
    ("api:project", "get", "/api/projects/{project}/", "api", "read"),
    ("api:project", "patch", "/api/projects/{project}/", "api", "write"),
    ("api:project", "delete", "/api/projects/{project}/", "api", "owner"),
    ("api:members", "get", "/api/projects/{project}/members/", "api", "read"),
    ("api:members", "post", "/api/projects/{project}/members/", "api", "owner"),
    ("api:member", "get", "/api/projects/{project}/members/{owner_membership}/", "api", "read"),
    ("api:member", "patch", "/api/projects/{project}/members/{owner_membership}/", "api", "owner"),
    ("api:member", "delete", "/api/projects/{project}/members/{owner_membership}/", "api", "owner"),
    ("api:project-invitations", "get", "/api/projects/{project}/invitations/", "api", "owner"),
    ("api:project-invitation", "delete", "/api/projects/{project}/invitations/{invitation}/", "api", "owner"),
    ("api:invitations", "get", "/api/invitations/", "api", "user"),
    ("api:invitation-accept", "post", "/api/invitations/{invitation}/accept/", "api", "user"),
    ("api:invitation-decline", "post", "/api/invitations/{invitation}/decline/", "api", "user"),
    ("api:project-datasets", "get", "/api/projects/{project}/datasets/", "api", "read"),
    ("api:project-datasets", "post", "/api/projects/{project}/datasets/", "api", "write"),
    ("api:dataset", "get", "/api/datasets/{dataset}/", "api", "read"),
    ("api:dataset", "patch", "/api/datasets/{dataset}/", "api", "write"),
    ("api:dataset", "delete", "/api/datasets/{dataset}/", "api", "write"),
    ("api:dataset-cases", "get", "/api/datasets/{dataset}/cases/", "api", "read"),
    ("api:case", "get", "/api/datasets/{dataset}/cases/{case}/", "api", "read"),
    ("api:case-preview", "get", "/api/datasets/{dataset}/cases/{case}/preview/", "api", "read"),
    # runs and models (issue 4)
    ("runs:list", "get", "/projects/{project}/runs/", "page", "read"),
    ("runs:new", "get", "/datasets/{dataset}/search/", "page", "write"),
    ("runs:detail", "get", "/runs/{run}/", "page", "read"),
    ("runs:clone", "get", "/runs/{run}/clone/", "page", "write"),
    ("runs:cancel", "post", "/runs/{run}/cancel/", "page", "write"),
    ("runs:delete", "post", "/runs/{run}/delete/", "page", "write"),
    ("runs:retrain", "get", "/runs/{run}/retrain/", "page", "write"),
    ("runs:architecture", "get", "/runs/{run}/architecture/", "page", "read"),
    ("runs:genotype", "get", "/runs/{run}/genotype.json", "page", "read"),
    ("runs:upload-genotype", "get", "/datasets/{dataset}/retrain/", "page", "write"),
    ("runs:upload-genotype", "post", "/datasets/{dataset}/retrain/", "page", "write"),
    ("runs:compare", "get", "/projects/{project}/architectures/compare/?a={run}", "page", "read"),
    ("mlmodels:list", "get", "/models/", "page", "user"),
    ("mlmodels:detail", "get", "/models/{model}/", "page", "read"),
    ("mlmodels:bundle", "get", "/models/{model}/bundle.zip", "page", "read"),
    ("mlmodels:network", "get", "/models/{model}/network", "page", "read"),
    ("mlmodels:delete", "post", "/models/{model}/delete/", "page", "write"),
    ("api:methods", "get", "/api/methods/", "api", "user"),
    ("api:project-runs", "get", "/api/projects/{project}/runs/", "api", "read"),
    ("api:project-runs", "post", "/api/projects/{project}/runs/", "api", "write"),
    ("api:dataset-run-defaults", "get", "/api/datasets/{dataset}/run-defaults/", "api", "read"),
    ("api:dataset-estimate", "post", "/api/datasets/{dataset}/estimate/", "api", "read"),
    ("api:dataset-retrain", "post", "/api/datasets/{dataset}/retrain/", "api", "write"),
    ("api:run", "get", "/api/runs/{run}/", "api", "read"),
    ("api:run", "delete", "/api/runs/{run}/", "api", "write"),
    ("api:run", "patch", "/api/runs/{run}/", "api", "write"),
    ("api:run-cancel", "post", "/api/runs/{run}/cancel/", "api", "write"),
    ("api:run-clone", "post", "/api/runs/{run}/clone/", "api", "write"),
    ("api:run-retrain", "post", "/api/runs/{run}/retrain/", "api", "write"),
    ("api:run-events", "get", "/api/runs/{run}/events?after=0", "api", "read"),
    ("api:run-genotype", "get", "/api/runs/{run}/genotype/", "api", "read"),
    ("api:models", "get", "/api/models/", "api", "user"),
    ("api:model", "get", "/api/models/{model}/", "api", "read"),
    ("api:model", "patch", "/api/models/{model}/", "api", "write"),
    ("api:model", "delete", "/api/models/{model}/", "api", "write"),
    ("api:model-bundle", "get", "/api/models/{model}/bundle.zip", "api", "read"),
    ("api:model-network", "get", "/api/models/{model}/network", "api", "read"),
    # predictions (issue 4): viewers read; editors and owners predict and delete
    ("predictions:list", "get", "/predictions/", "page", "user"),
    ("predictions:create", "get", "/models/{model}/predict/", "page", "write"),
    ("predictions:create", "post", "/models/{model}/predict/", "page", "write"),
    ("predictions:detail", "get", "/predictions/{prediction}/", "page", "read"),
    ("predictions:input", "get", "/predictions/{prediction}/input.nii.gz", "page", "read"),
    ("predictions:result", "get", "/predictions/{prediction}/label.nii.gz", "page", "read"),
    ("predictions:attention", "get", "/predictions/{prediction}/attention/attention_n0_1_n1_1.nii.gz", "page", "read"),
    ("predictions:delete", "post", "/predictions/{prediction}/delete/", "page", "write"),
    ("api:model-infer", "post", "/api/models/{model}/infer", "api", "write"),
    ("api:model-predictions", "get", "/api/models/{model}/predictions/", "api", "read"),
    ("api:prediction", "get", "/api/predictions/{prediction}/", "api", "read"),
    ("api:prediction", "delete", "/api/predictions/{prediction}/", "api", "write"),
    ("api:prediction-result", "get", "/api/predictions/{prediction}/result", "api", "read"),
    ("api:prediction-input", "get", "/api/predictions/{prediction}/input", "api", "read"),
    # resume (issue 9), evaluations (issue 12), comparisons (issue 13), resumable uploads (issue 14)
    ("runs:resume", "post", "/runs/{run}/resume/", "page", "write"),
    ("api:run-resume", "post", "/api/runs/{run}/resume/", "api", "write"),
    ("evaluations:csv", "get", "/models/{model}/evaluation.csv", "page", "read"),
    ("api:model-evaluation", "get", "/api/models/{model}/evaluation/", "api", "read"),
    ("evaluations:retry", "post", "/models/{model}/evaluation/retry/", "page", "write"),
    ("evaluations:controls", "post", "/models/{model}/controls/", "page", "write"),
    ("evaluations:folds", "post", "/models/{model}/folds/", "page", "write"),
    ("comparisons:workspace", "get", "/projects/{project}/compare/?item=run-{run}", "page", "read"),
    ("comparisons:csv", "get", "/projects/{project}/compare/overview.csv?item=run-{run}", "page", "read"),
    ("comparisons:leaderboard", "get", "/datasets/{dataset}/leaderboard/", "page", "read"),
    ("comparisons:leaderboard-csv", "get", "/datasets/{dataset}/leaderboard.csv", "page", "read"),
    ("api:project-comparison", "get", "/api/projects/{project}/comparison/", "api", "read"),
    ("api:dataset-leaderboard", "get", "/api/datasets/{dataset}/leaderboard/", "api", "read"),
    ("uploads:tus", "post", "/uploads/tus/", "api", "user"),
    ("uploads:tus-upload", "get", "/uploads/tus/0123456789abcdef", "api", "user"),
    ("uploads:dataset", "post", "/uploads/datasets/{project}/", "api", "write"),
]
OBJECT_ACCESS = {"read", "write", "owner"}
# Read routes of things the world fixture does not make (a finished test-split evaluation): they
# answer 404 to members as well, so only the outsider and anonymous checks apply to them.
NOTHING_TO_READ_YET = {"evaluations:csv", "api:model-evaluation"}
# WebSocket routes, checked in test_websocket_refuses_outsiders_and_anonymous.
WS_ROUTES = ["ws/datasets/<int:dataset_id>/", "ws/runs/<int:run_id>/"]
# Routes of Django's admin are guarded by the admin itself (staff only), see test_admin_needs_staff.
EXEMPT_PREFIXES = ("admin/",)


def _all_patterns(patterns=None, prefix="", namespace=None):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            ns = p.namespace or namespace
            full_ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else ns
            yield from _all_patterns(p.url_patterns, prefix + str(p.pattern), full_ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield prefix + str(p.pattern), name


def test_every_route_is_covered():
    listed = {name for name, *_ in ROUTES}
    missing = [
        (route, name) for route, name in _all_patterns()
        if not route.startswith(EXEMPT_PREFIXES) and name not in listed
    ]
    assert not missing, f"routes without permission checks in ROUTES: {missing}"
    from webapp.routing import websocket_urlpatterns

    assert sorted(str(p.pattern) for p in websocket_urlpatterns) == sorted(WS_ROUTES)


@pytest.fixture
def world(make_user, make_project, media_root):
    owner, editor, viewer, outsider = (make_user(n) for n in ("owner", "editor", "viewer", "outsider"))
    project = make_project(owner, name="Private", editors=[editor], viewers=[viewer])
    make_project(outsider, name="Elsewhere")
    dataset = Dataset.objects.create(project=project, name="D", source="files", status=Dataset.Status.UPLOADED)
    dataset.transition(Dataset.Status.IMPORTING)
    dataset.transition(Dataset.Status.READY)
    dataset.preview_dir.mkdir(parents=True)
    (dataset.preview_dir / "case_0001.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    rel = (dataset.preview_dir / "case_0001.png").relative_to(media_root)
    case = Case.objects.create(dataset=dataset, case_id="c1", index=1, image_path="x", label_path="y", preview_path=str(rel))
    owner_membership = Membership.objects.get(project=project, user=owner)
    ids = {"project": project.pk, "dataset": dataset.pk, "case": case.pk, "owner_membership": owner_membership.pk}
    from webapp.projects.services import member_invite  # a pending invitation (issue 14, F9)

    ids["invitation"] = member_invite(project=project, actor=owner, identifier=make_user("invitee").username).pk
    from test_runs_support import make_model, make_run, tiny_genotype  # runs and models (issue 4)

    ids["run"] = make_run(project, dataset, status="succeeded", genotype=tiny_genotype()).pk
    ids["model"] = make_model(project, dataset, media_root).pk
    from predictiontesting import make_prediction  # predictions (issue 4)

    from webapp.mlmodels.models import TrainedModel

    ids["prediction"] = make_prediction(TrainedModel.objects.get(pk=ids["model"])).pk
    return {"owner": owner, "editor": editor, "viewer": viewer, "outsider": outsider, "ids": ids, "dataset": dataset}


def _call(client, method, url):
    if method in ("patch", "put"):
        return getattr(client, method)(url, data={}, content_type="application/json")
    return getattr(client, method)(url)


def _object_routes():
    return [r for r in ROUTES if r[4] in OBJECT_ACCESS]


@pytest.mark.parametrize("name,method,template,kind,access", _object_routes(), ids=lambda v: str(v))
def test_other_projects_objects_answer_404(client, world, name, method, template, kind, access):
    client.force_login(world["outsider"])
    response = _call(client, method, template.format(**world["ids"]))
    assert response.status_code == 404, (name, method, response.status_code)
    _assert_unchanged(world)


def _assert_unchanged(world):
    """Nothing an outsider, anonymous user or viewer sent changed the project."""
    ids = world["ids"]
    assert Project.objects.filter(pk=ids["project"], name="Private").exists()
    assert Dataset.objects.filter(pk=ids["dataset"], name="D", project_id=ids["project"]).exists()
    assert Case.objects.filter(pk=ids["case"]).exists() and world["dataset"].root.exists()
    assert sorted(Membership.objects.filter(project_id=ids["project"]).values_list("user__username", "role")) == [
        ("editor", "editor"), ("owner", "owner"), ("viewer", "viewer"),
    ]
    assert Dataset.objects.count() == 1


@pytest.mark.parametrize("name,method,template,kind,access", [r for r in ROUTES if r[4] != "public"], ids=lambda v: str(v))
def test_anonymous_is_sent_to_sign_in_or_gets_401(client, world, name, method, template, kind, access):
    response = _call(client, method, template.format(**world["ids"]))
    if kind == "page":
        assert response.status_code == 302, (name, method, response.status_code)
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == 401, (name, method, response.status_code)
    _assert_unchanged(world)


@pytest.mark.parametrize("name,method,template,kind,access", [r for r in _object_routes() if r[4] != "read"], ids=lambda v: str(v))
def test_viewers_cannot_write(client, world, name, method, template, kind, access):
    client.force_login(world["viewer"])
    response = _call(client, method, template.format(**world["ids"]))
    assert response.status_code == 403, (name, method, response.status_code)
    _assert_unchanged(world)


@pytest.mark.parametrize("name,method,template,kind,access", [r for r in _object_routes() if r[4] == "owner"], ids=lambda v: str(v))
def test_owner_only_actions_refuse_editors(client, world, name, method, template, kind, access):
    client.force_login(world["editor"])
    response = _call(client, method, template.format(**world["ids"]))
    assert response.status_code == 403, (name, method, response.status_code)


@pytest.mark.parametrize("name,method,template,kind,access", [r for r in _object_routes() if r[4] == "read" and r[0] not in NOTHING_TO_READ_YET], ids=lambda v: str(v))
def test_members_can_read(client, world, name, method, template, kind, access):
    client.force_login(world["viewer"])
    response = _call(client, method, template.format(**world["ids"]))
    assert response.status_code == 200, (name, method, response.status_code)


def test_lists_show_only_own_projects_objects(client, world):
    client.force_login(world["outsider"])
    assert [p["name"] for p in client.get("/api/projects/").json()] == ["Elsewhere"]
    assert "Private" not in client.get("/projects/").content.decode()
    assert b'data-dataset-id' not in client.get("/datasets/").content
    client.force_login(world["viewer"])
    assert [p["name"] for p in client.get("/api/projects/").json()] == ["Private"]
    assert f'data-dataset-id="{world["ids"]["dataset"]}"'.encode() in client.get("/datasets/").content


def test_nested_ids_of_another_project_answer_404_under_ones_own_parents(client, world):
    """A case or membership id of another project, put under a dataset or project the user does
    belong to, answers 404 and changes nothing."""
    outsider = world["outsider"]
    own_project = Project.objects.get(name="Elsewhere")
    own_dataset = Dataset.objects.create(project=own_project, name="Mine", source="files")
    case, membership = world["ids"]["case"], world["ids"]["owner_membership"]
    client.force_login(outsider)
    for url in (
        f"/api/datasets/{own_dataset.pk}/cases/{case}/",
        f"/api/datasets/{own_dataset.pk}/cases/{case}/preview/",
        f"/datasets/{own_dataset.pk}/cases/{case}/preview.png",
        f"/api/projects/{own_project.pk}/members/{membership}/",
    ):
        assert client.get(url).status_code == 404, url
    member_api = f"/api/projects/{own_project.pk}/members/{membership}/"
    assert client.patch(member_api, {"role": "viewer"}, content_type="application/json").status_code == 404
    assert client.delete(member_api).status_code == 404
    assert client.post(f"/projects/{own_project.pk}/members/{membership}/role/", {"role": "viewer"}).status_code == 404
    assert client.post(f"/projects/{own_project.pk}/members/{membership}/remove/").status_code == 404
    assert Membership.objects.filter(pk=membership, role="owner").exists()


def test_body_fields_cannot_reach_or_move_into_another_project(client, world):
    """Ids in request bodies are ignored: PATCH cannot move a dataset into another project."""
    editor = world["editor"]
    own = Project.objects.create(name="Editor's own")
    Membership.objects.create(project=own, user=editor, role="owner")
    client.force_login(editor)
    url = f"/api/datasets/{world['ids']['dataset']}/"
    for target in (own.pk, Project.objects.get(name="Elsewhere").pk):
        response = client.patch(url, {"project": target, "project_id": target, "name": "Renamed"}, content_type="application/json")
        assert response.status_code == 200 and response.json()["project"] == world["ids"]["project"]
    assert Dataset.objects.get(pk=world["ids"]["dataset"]).project_id == world["ids"]["project"]


@pytest.mark.django_db(transaction=True)
def test_media_files_have_no_url(client, world, settings):
    """Stored volumes and previews are reachable only through the access-checked routes: not by
    a media URL, nor through the static files the ASGI application serves."""
    from django.core.exceptions import SuspiciousFileOperation
    from webtesting import asgi_call

    client.force_login(world["owner"])
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    preview = next(world["dataset"].root.rglob("*.png")).relative_to(settings.MEDIA_ROOT).as_posix()
    for prefix in (settings.MEDIA_URL, settings.STATIC_URL, f"{settings.STATIC_URL}../media/"):
        assert client.get(f"{prefix}{preview}").status_code == 404, prefix
        try:
            served = asgi_call("GET", f"{prefix}{preview}", [cookie])
        except SuspiciousFileOperation:  # the static handler refuses '..' (the server answers 500)
            continue
        assert served.status == 404, prefix


def test_api_token_authentication(client, world):
    response = client.post("/api/auth/token/", {"username": "viewer", "password": "pw-for-tests-1"})
    assert response.status_code == 200
    token = response.json()["token"]
    from django.test import Client

    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(f"/api/datasets/{world['ids']['dataset']}/").status_code == 200
    assert api.delete(f"/api/datasets/{world['ids']['dataset']}/").status_code == 403
    assert Client(HTTP_AUTHORIZATION="Token wrong").get("/api/projects/").status_code == 401


def test_admin_needs_staff(client, world):
    assert client.get("/admin/").status_code == 302
    client.force_login(world["owner"])
    assert client.get("/admin/").status_code == 302
    world["owner"].is_staff = world["owner"].is_superuser = True
    world["owner"].save()
    assert client.get("/admin/").status_code == 200


def test_admin_deletes_a_datasets_files_with_it(client, world, django_capture_on_commit_callbacks):
    """The stored volumes are patient data: deleting a dataset in the admin removes them too."""
    dataset = world["dataset"]
    assert any(dataset.root.rglob("*.png"))
    world["owner"].is_staff = world["owner"].is_superuser = True
    world["owner"].save()
    client.force_login(world["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/datasets/dataset/{dataset.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not dataset.root.exists()


# --- WebSocket ---------------------------------------------------------------------------------
def _ws_status(user, dataset_id, origin=b"http://127.0.0.1"):
    """Connect through the full ASGI stack (origin validator, session auth); return the first
    message or the close code."""
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from webapp.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if user is not None:
        c = Client()
        c.force_login(user)
        headers.append((b"cookie", f"sessionid={c.cookies['sessionid'].value}".encode()))

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/datasets/{dataset_id}/", headers=headers)
        connected, code = await communicator.connect()
        if not connected:
            return ("refused", code)
        message = await communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            await communicator.wait()
            return ("closed", message.get("code"))
        await communicator.disconnect()
        import json

        return ("message", json.loads(message["text"]))

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_websocket_refuses_outsiders_and_anonymous(world):
    dataset_id = world["ids"]["dataset"]
    kind, payload = _ws_status(world["viewer"], dataset_id)
    assert kind == "message" and payload["dataset"]["status"] == "ready"
    assert _ws_status(world["outsider"], dataset_id) == ("closed", 4403)
    assert _ws_status(None, dataset_id) == ("closed", 4403)
    assert _ws_status(world["viewer"], dataset_id, origin=b"http://evil.example")[0] == "refused"


@pytest.mark.django_db(transaction=True)
def test_websocket_stops_when_the_user_leaves_the_project(world):
    """A member removed from the project while connected gets no further status: 4403."""
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from webapp.asgi import application
    from webapp.datasets.events import dataset_changed

    c = Client()
    c.force_login(world["viewer"])
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", f"sessionid={c.cookies['sessionid'].value}".encode())]
    dataset = world["dataset"]

    async def run():
        communicator = WebsocketCommunicator(application, f"/ws/datasets/{dataset.pk}/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["dataset"]["status"] == "ready"
        from channels.db import database_sync_to_async

        await database_sync_to_async(Membership.objects.filter(project_id=dataset.project_id, user=world["viewer"]).delete)()
        await database_sync_to_async(dataset_changed)(dataset)
        message = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return message

    message = async_to_sync(run)()
    assert message == {"type": "websocket.close", "code": 4403}
