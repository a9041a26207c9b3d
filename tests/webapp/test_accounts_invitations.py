"""Issue 14, F9: invitations neither reveal whether an account exists nor show its e-mail, and an
invited user joins only once they accept."""
import pytest

from webapp.projects.models import Invitation, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(make_user, make_project):
    owner = make_user("owner")
    alice = make_user("alice", email="Alice.Smith@hospital.example")
    project = make_project(owner, name="Liver")
    return {"owner": owner, "alice": alice, "project": project, "url": f"/api/projects/{project.pk}/members/"}


def _strip_id(answer):
    return {k: v for k, v in answer.json().items() if k != "invitation"}


def test_existing_missing_and_member_accounts_get_identical_answers(client, lab, make_user):
    """An owner probing names learns nothing: status, body and the pending list look the same."""
    member = make_user("member", email="member@hospital.example")
    Membership.objects.create(project=lab["project"], user=member, role="viewer")
    client.force_login(lab["owner"])
    probes = ["alice", "alice.smith@hospital.example", "nobody", "ghost@hospital.example", "member", "member@hospital.example"]
    answers = [client.post(lab["url"], {"user": who}) for who in probes]
    assert {a.status_code for a in answers} == {202}
    assert len({str(_strip_id(a)) for a in answers}) == 1
    for answer in answers:
        text = answer.content.decode().lower()
        assert "alice" not in text and "hospital" not in text and "member@" not in text
    pending = client.get(f"/api/projects/{lab['project'].pk}/invitations/").json()
    assert len(pending) == len(probes)
    assert {tuple(sorted(row)) for row in pending} == {("created_at", "id", "invited", "invited_by", "role", "status")}
    shown = {row["invited"] for row in pending}
    assert "a…@hospital.example" in shown and "g…@hospital.example" in shown  # e-mails masked
    assert not any("alice.smith" in s or "ghost@" in s for s in shown)


def test_member_list_shows_no_emails(client, lab):
    Membership.objects.create(project=lab["project"], user=lab["alice"], role="viewer")
    client.force_login(lab["owner"])
    members = client.get(lab["url"]).json()
    assert all("email" not in m for m in members)
    assert b"hospital" not in client.get(lab["url"]).content


def test_invitee_accepts_before_joining(client, lab):
    client.force_login(lab["owner"])
    client.post(lab["url"], {"user": "Alice.Smith@Hospital.example", "role": "editor"})
    assert not Membership.objects.filter(user=lab["alice"]).exists()
    client.force_login(lab["alice"])
    assert client.get(f"/api/projects/{lab['project'].pk}/").status_code == 404  # not yet a member
    page = client.get("/projects/invitations/").content.decode()
    assert "Liver" in page and 'data-accept="' in page
    invitation = Invitation.objects.get(invitee=lab["alice"])
    joined = client.post(f"/projects/invitations/{invitation.pk}/accept/")
    assert joined.status_code == 302 and joined["Location"] == f"/projects/{lab['project'].pk}/"
    assert Membership.objects.get(project=lab["project"], user=lab["alice"]).role == "editor"
    assert client.get("/api/invitations/").json() == []
    again = client.post(f"/api/invitations/{invitation.pk}/accept/")
    assert again.status_code == 400 and "already accepted" in again.content.decode()


def test_decline_and_withdraw(client, lab):
    client.force_login(lab["owner"])
    first = client.post(lab["url"], {"user": "alice"}).json()["invitation"]
    client.force_login(lab["alice"])
    assert client.post(f"/api/invitations/{first}/decline/").status_code == 204
    assert not Membership.objects.filter(user=lab["alice"]).exists()
    assert Invitation.objects.get(pk=first).status == "declined"
    client.force_login(lab["owner"])
    second = client.post(lab["url"], {"user": "alice"}).json()["invitation"]
    assert second != first
    assert client.delete(f"/api/projects/{lab['project'].pk}/invitations/{second}/").status_code == 204
    client.force_login(lab["alice"])
    assert client.get("/api/invitations/").json() == []
    assert client.post(f"/api/invitations/{second}/accept/").status_code == 400


def test_nobody_else_can_see_or_answer_an_invitation(client, lab, make_user):
    client.force_login(lab["owner"])
    invitation = client.post(lab["url"], {"user": "alice"}).json()["invitation"]
    ghost = client.post(lab["url"], {"user": "ghost"}).json()["invitation"]
    eve = make_user("eve")
    client.force_login(eve)
    for url in (f"/api/invitations/{invitation}/accept/", f"/api/invitations/{invitation}/decline/",
                f"/projects/invitations/{invitation}/accept/", f"/api/invitations/{ghost}/accept/",
                "/api/invitations/99999999999999999999/accept/"):
        assert client.post(url).status_code == 404, url
    assert client.get("/api/invitations/").json() == []
    # The owner who sent it cannot accept it for alice either.
    client.force_login(lab["owner"])
    assert client.post(f"/api/invitations/{invitation}/accept/").status_code == 404
    assert not Membership.objects.filter(user__in=[eve, lab["alice"]]).exists()


def test_reinviting_updates_the_pending_invitation(client, lab):
    client.force_login(lab["owner"])
    first = client.post(lab["url"], {"user": "alice", "role": "viewer"}).json()["invitation"]
    second = client.post(lab["url"], {"user": " ALICE ", "role": "owner"}).json()["invitation"]
    assert first == second and Invitation.objects.get(pk=first).role == "owner"


def test_bad_invitations_get_clear_messages(client, lab):
    client.force_login(lab["owner"])
    assert client.post(lab["url"], {"user": "x" * 300}).status_code == 400
    assert client.post(lab["url"], {"user": "   "}).status_code == 400
    assert client.post(lab["url"], {"user": "alice", "role": "admin"}).status_code == 400
    client.force_login(lab["alice"])
    assert client.post(lab["url"], {"user": "alice"}).status_code == 404  # not a member


def test_owner_withdraws_from_the_project_page(client, lab):
    client.force_login(lab["owner"])
    invitation = client.post(lab["url"], {"user": "alice"}).json()["invitation"]
    page = client.post(f"/projects/{lab['project'].pk}/invitations/{invitation}/withdraw/", follow=True)
    assert "The invitation was withdrawn." in page.content.decode()
    assert Invitation.objects.get(pk=invitation).status == "cancelled"
    again = client.post(f"/projects/{lab['project'].pk}/invitations/{invitation}/withdraw/", follow=True)
    assert "already cancelled" in again.content.decode()


def test_an_account_created_after_the_invitation_picks_it_up(client, lab, make_user):
    """Invited by an e-mail (or username) no account had yet: once an account with it exists,
    the invitation is theirs to accept; projects they already belong to are left out."""
    client.force_login(lab["owner"])
    client.post(lab["url"], {"user": "New.Fellow@Hospital.example", "role": "editor"})
    client.post(lab["url"], {"user": "carol"})
    assert Invitation.objects.filter(invitee__isnull=True, status="pending").count() == 2
    fellow = make_user("fellow", email="new.fellow@hospital.example")
    carol = make_user("carol")
    client.force_login(fellow)
    page = client.get("/projects/invitations/").content.decode()
    assert "Liver" in page
    invitation = Invitation.objects.get(invitee=fellow)
    assert client.post(f"/projects/invitations/{invitation.pk}/accept/").status_code == 302
    assert Membership.objects.get(user=fellow, project=lab["project"]).role == "editor"
    assert Invitation.objects.get(invitee=carol).status == "pending"
    # an e-mail that two accounts share names neither of them, however often they are saved
    first = make_user("first", email="shared@hospital.example")
    make_user("second", email="shared@hospital.example")
    client.force_login(lab["owner"])
    client.post(lab["url"], {"user": "shared@hospital.example"})
    first.first_name = "Ann"
    first.save()
    assert Invitation.objects.get(identifier="shared@hospital.example").invitee_id is None
    # a member whose e-mail is later set does not get an invitation to their own project
    client.post(lab["url"], {"user": "alice.new@hospital.example"})
    Membership.objects.create(project=lab["project"], user=lab["alice"], role="viewer")
    lab["alice"].email = "alice.new@hospital.example"
    lab["alice"].save()
    assert Invitation.objects.get(identifier="alice.new@hospital.example").invitee_id is None
