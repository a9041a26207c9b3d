"""Projects, members and roles through pages, API and services."""
import json
from urllib.parse import urlencode

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from webapp.datasets.models import Dataset
from webapp.projects import services
from webapp.projects.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_sign_in_and_out_pages(client, make_user):
    make_user("alice", password="alice-pass-1")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and 'id="login-form"' in page.content.decode()
    bad = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert 'id="login-error"' in bad.content.decode()
    good = client.post("/accounts/login/", {"username": "alice", "password": "alice-pass-1"})
    assert good.status_code == 302 and good["Location"] == "/projects/"
    assert client.get("/projects/").status_code == 200
    out = client.post("/accounts/logout/")
    assert out.status_code == 302 and out["Location"] == "/accounts/login/"
    assert client.get("/projects/").status_code == 302


def test_create_project_page_makes_the_creator_owner(client, make_user):
    user = make_user()
    client.force_login(user)
    response = client.post("/projects/", {"name": "Liver study", "description": "CT"})
    project = Project.objects.get(name="Liver study")
    assert response["Location"] == f"/projects/{project.pk}/"
    assert Membership.objects.get(project=project, user=user).role == "owner"
    assert client.post("/projects/", {"name": "  "}).status_code == 200
    assert Project.objects.count() == 1


def test_invite_by_username_or_email_via_api(client, make_user, make_project):
    """Issue 14, F9: every invitation gets the same 202 (no username or e-mail echoed, nothing
    said about whether an account exists); the invitee joins only when they accept."""
    owner, carol = make_user("owner"), make_user("carol", email="Carol@Clinic.org")
    bob = make_user("bob")
    project = make_project(owner)
    client.force_login(owner)
    url = f"/api/projects/{project.pk}/members/"
    answers = [client.post(url, {"user": who, "role": "editor"}) for who in ("bob", "carol@clinic.org", "nobody@nowhere.org")]
    assert [a.status_code for a in answers] == [202, 202, 202]
    bodies = [{k: v for k, v in a.json().items() if k != "invitation"} for a in answers]
    assert bodies[0] == bodies[1] == bodies[2]
    for answer in answers:
        assert b"bob" not in answer.content and b"clinic" not in answer.content.lower() and b"carol" not in answer.content
    assert not Membership.objects.filter(project=project, user__in=[bob, carol]).exists()  # not yet joined
    bad_role = client.post(url, {"user": "carol", "role": "admin"})
    assert bad_role.status_code == 400
    assert sorted(m["username"] for m in client.get(url).json()) == ["owner"]
    client.force_login(carol)
    mine = client.get("/api/invitations/").json()
    assert [(i["project"], i["role"]) for i in mine] == [(project.pk, "editor")]
    assert client.post(f"/api/invitations/{mine[0]['id']}/accept/").json()["role"] == "editor"
    assert Membership.objects.get(project=project, user=carol).role == "editor"


def test_invite_page(client, make_user, make_project):
    owner, bob = make_user("owner"), make_user("bob")
    project = make_project(owner)
    client.force_login(owner)
    known = client.post(f"/projects/{project.pk}/members/", {"user": "bob", "role": "editor"}, follow=True).content.decode()
    assert "Invitation recorded" in known and "joins the project as editor once they accept" in known
    assert not Membership.objects.filter(project=project, user=bob).exists()
    unknown = client.post(f"/projects/{project.pk}/members/", {"user": "ghost", "role": "editor"}, follow=True).content.decode()
    assert "Invitation recorded" in unknown and "No account" not in unknown


def test_last_owner_cannot_leave_or_be_demoted(make_user, make_project):
    owner, bob = make_user("owner"), make_user("bob")
    project = make_project(owner, viewers=[bob])
    mine = Membership.objects.get(project=project, user=owner)
    with pytest.raises(ValidationError, match="at least one owner"):
        services.member_change_role(membership=mine, actor=owner, role="viewer")
    with pytest.raises(ValidationError, match="at least one owner"):
        services.member_remove(membership=mine, actor=owner)
    bobs = Membership.objects.get(project=project, user=bob)
    services.member_change_role(membership=bobs, actor=owner, role="owner")
    services.member_remove(membership=mine, actor=owner)  # now allowed: bob owns it
    assert list(project.memberships.values_list("user__username", flat=True)) == ["bob"]


def test_members_may_leave_but_not_remove_others(make_user, make_project):
    owner, bob, eve = make_user("owner"), make_user("bob"), make_user("eve")
    project = make_project(owner, editors=[bob, eve])
    with pytest.raises(PermissionDenied):
        services.member_remove(membership=Membership.objects.get(project=project, user=eve), actor=bob)
    services.member_remove(membership=Membership.objects.get(project=project, user=bob), actor=bob)
    assert not Membership.objects.filter(project=project, user=bob).exists()


def test_project_with_datasets_cannot_be_deleted(client, make_user, make_project):
    owner = make_user()
    project = make_project(owner)
    Dataset.objects.create(project=project, name="d", source="files")
    client.force_login(owner)
    response = client.delete(f"/api/projects/{project.pk}/")
    assert response.status_code == 400 and "Delete them first" in response.content.decode()
    Dataset.objects.all().delete()
    assert client.delete(f"/api/projects/{project.pk}/").status_code == 204
    assert not Project.objects.exists()


def test_editor_may_rename_but_viewer_may_not(client, make_user, make_project):
    owner, ed, vi = make_user("o"), make_user("e"), make_user("v")
    project = make_project(owner, editors=[ed], viewers=[vi])
    client.force_login(ed)
    assert client.patch(f"/api/projects/{project.pk}/", {"name": "New"}, content_type="application/json").json()["name"] == "New"
    client.force_login(vi)
    assert client.patch(f"/api/projects/{project.pk}/", {"name": "Nope"}, content_type="application/json").status_code == 403
    project.refresh_from_db()
    assert project.name == "New"


def test_api_token_page(client, make_user):
    client.force_login(make_user())
    assert 'id="no-token"' in client.get("/accounts/token/").content.decode()
    page = client.post("/accounts/token/", follow=True).content.decode()
    assert 'id="api-token"' in page


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_api_bodies_over_the_memory_cap_are_refused_before_parsing(client, make_user, make_project, settings, content_type):
    """JSON and form bodies are parsed in memory: over DATA_UPLOAD_MAX_MEMORY_SIZE they are
    refused (400) before parsing, signed in or not (the token route is public)."""
    owner = make_user("owner", password="owner-pass-1")
    project = make_project(owner, name="Kept")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = "x" * 20_000
    body = json.dumps({"name": big}) if content_type == "application/json" else urlencode({"name": big})
    token = json.dumps({"username": "owner", "password": "owner-pass-1", "pad": big})
    if content_type != "application/json":
        token = urlencode({"username": "owner", "password": "owner-pass-1", "pad": big})
    assert client.post("/api/auth/token/", token, content_type=content_type).status_code == 400
    client.force_login(owner)
    for method, url in (("patch", f"/api/projects/{project.pk}/"), ("post", "/api/projects/"), ("post", f"/api/projects/{project.pk}/members/")):
        response = getattr(client, method)(url, body, content_type=content_type)
        assert response.status_code == 400 and b"token" not in response.content, (method, url, response.status_code)
    assert list(Project.objects.values_list("name", flat=True)) == ["Kept"]


# -- the project page lists what the project holds and renames it (issue 13.6) ------------------
@pytest.fixture
def stocked(make_user, make_project, media_root):
    from predictiontesting import make_prediction
    from test_runs_support import make_model, make_run

    owner, viewer = make_user("owner13"), make_user("viewer13")
    project = make_project(owner, name="Liver study", viewers=[viewer])
    dataset = Dataset.objects.create(project=project, name="Liver CT", source="folder", status="ready",
                                     labels={"0": "background", "1": "a", "2": "b"})
    search = make_run(project, dataset, status="running", name="Running search")
    model = make_model(project, dataset, media_root)
    prediction = make_prediction(model)
    return {"owner": owner, "viewer": viewer, "project": project, "dataset": dataset, "search": search,
            "model": model, "prediction": prediction}


def test_project_page_lists_datasets_runs_models_and_predictions_with_status(client, stocked):
    client.force_login(stocked["owner"])
    text = client.get(f"/projects/{stocked['project'].pk}/").content.decode()
    assert f'data-dataset-id="{stocked["dataset"].pk}"' in text and "Liver CT" in text
    assert f'data-run-id="{stocked["search"].pk}"' in text and "Running search" in text and "status-running" in text
    assert f'data-model-id="{stocked["model"].pk}"' in text
    # default names say what a thing is
    assert stocked["model"].name == "DiNTS · Liver CT · tiny · seed 0" and stocked["model"].name in text
    assert f'data-prediction-id="{stocked["prediction"].pk}"' in text
    assert f"scan.nii.gz segmented by {stocked['model'].name}" in text and "status-succeeded" in text
    assert f'href="/projects/{stocked["project"].pk}/compare/"' in text
    assert f'href="/datasets/{stocked["dataset"].pk}/leaderboard/"' in text


@pytest.mark.parametrize("kind", ["dataset", "model", "prediction"])
def test_every_name_can_be_edited_on_the_project_page(client, stocked, kind):
    thing = stocked[kind]
    client.force_login(stocked["owner"])
    url = f"/projects/{stocked['project'].pk}/"
    response = client.post(url, {"rename": kind, "id": thing.pk, "name": "  Renamed thing  "}, follow=True)
    assert response.status_code == 200 and "is now called “Renamed thing”" in response.content.decode()
    thing.refresh_from_db()
    assert thing.name == "Renamed thing"
    # too long: a clear message, nothing changed
    response = client.post(url, {"rename": kind, "id": thing.pk, "name": "x" * 201}, follow=True)
    assert "under 200 characters" in response.content.decode()
    thing.refresh_from_db()
    assert thing.name == "Renamed thing"
    # an id of no thing of this project is a 404; a viewer may not rename
    assert client.post(url, {"rename": kind, "id": 999999, "name": "Nope"}).status_code == 404
    assert client.post(url, {"rename": kind, "id": "abc", "name": "Nope"}).status_code == 404
    assert client.post(url, {"rename": kind, "id": "9" * 30, "name": "Nope"}).status_code == 404
    client.force_login(stocked["viewer"])
    assert client.post(url, {"rename": kind, "id": thing.pk, "name": "Nope"}).status_code == 403
    thing.refresh_from_db()
    assert thing.name == "Renamed thing"


def test_a_prediction_renamed_to_blank_says_what_it_is_again(client, stocked):
    prediction = stocked["prediction"]
    client.force_login(stocked["owner"])
    url = f"/projects/{stocked['project'].pk}/"
    client.post(url, {"rename": "prediction", "id": prediction.pk, "name": "Mine"})
    client.post(url, {"rename": "prediction", "id": prediction.pk, "name": ""})
    prediction.refresh_from_db()
    assert prediction.name == "" and prediction.display_name.endswith(f"segmented by {stocked['model'].name}")


def test_a_rename_of_an_unknown_kind_changes_nothing(client, stocked):
    client.force_login(stocked["owner"])
    response = client.post(f"/projects/{stocked['project'].pk}/", {"rename": "project", "id": 1, "name": "x"}, follow=True)
    assert response.status_code == 200 and "Nothing was renamed" in response.content.decode()
