"""Writes for projects and members. Each takes the acting user and checks their role."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.http import Http404
from django.utils import timezone

from webapp.common.sockets import close_member_sockets

from .access import require_owner, require_write
from .models import Invitation, Membership, Project
from .selectors import user_find

Role = Membership.Role


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the project a name."})
    if len(name) > 200:
        raise ValidationError({"name": "Keep the name under 200 characters."})
    return name


@transaction.atomic
def project_create(*, user, name: str, description: str = "") -> Project:
    project = Project.objects.create(
        name=_clean_name(name), description=(description or "").strip(), created_by=user
    )
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    return project


@transaction.atomic
def project_update(*, project: Project, actor, name=None, description=None) -> Project:
    require_write(actor, project)
    if name is not None:
        project.name = _clean_name(name)
    if description is not None:
        project.description = description.strip()
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def project_delete(*, project: Project, actor) -> None:
    require_owner(actor, project)
    project_id, member_ids = project.pk, list(project.memberships.values_list("user_id", flat=True))
    try:
        project.delete()
    except ProtectedError:
        raise ValidationError(
            "This project still holds datasets (or runs, models, predictions). Delete them first."
        )
    for user_id in member_ids:
        transaction.on_commit(lambda user_id=user_id: close_member_sockets(project_id, user_id))


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.values)}."})
    return role


MAX_IDENTIFIER_LENGTH = 254


def _clean_identifier(identifier: str) -> str:
    identifier = (identifier or "").strip().lower()
    if not identifier:
        raise ValidationError({"user": "Give the username or e-mail address of the person to invite."})
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise ValidationError({"user": f"Keep the username or e-mail under {MAX_IDENTIFIER_LENGTH} characters."})
    return identifier


@transaction.atomic
def member_invite(*, project: Project, actor, identifier: str, role: str = Role.VIEWER) -> Invitation:
    """Invite whoever has the username or e-mail ``identifier`` (owners only); they join when
    they accept. Issue 14, F9: the result is the same pending invitation whether or not an
    account matches (or is already a member), so owners learn nothing about other accounts;
    inviting the same identifier again updates the pending invitation's role."""
    require_owner(actor, project)
    _check_role(role)
    identifier = _clean_identifier(identifier)
    invitee = user_find(identifier)
    if invitee is not None and Membership.objects.filter(project=project, user=invitee).exists():
        invitee = None  # nothing to accept; owners still see the same pending row
    invitation, _created = Invitation.objects.select_for_update().update_or_create(
        project=project, identifier=identifier, status=Invitation.Status.PENDING,
        defaults={"invitee": invitee, "role": role, "invited_by": actor},
    )
    return invitation


def invitations_bind_account(*, user) -> int:
    """Address to ``user`` the pending invitations that were typed for its username or e-mail
    before the account existed (or before it had that e-mail), by the rule ``user_find``
    matches with: the username, or an e-mail that no other active account has. Projects the
    user already belongs to are left out. Returns how many were bound."""
    if user.pk is None or not user.is_active:
        return 0
    names = {user.get_username().strip().lower()}
    email = (user.email or "").strip().lower()
    if email and user_find(email) == user:
        names.add(email)
    pending = Invitation.objects.filter(invitee__isnull=True, status=Invitation.Status.PENDING, identifier__in=names)
    return pending.exclude(project__memberships__user=user).update(invitee=user)


def _require_invitee(invitation: Invitation, actor) -> None:
    """Only the invitee sees or answers an invitation; to anyone else it does not exist."""
    if invitation.invitee_id is None or invitation.invitee_id != getattr(actor, "pk", None):
        raise Http404("Not found.")
    if invitation.status != Invitation.Status.PENDING:
        raise ValidationError(f"This invitation was already {invitation.get_status_display().lower()}.")


@transaction.atomic
def invitation_accept(*, invitation: Invitation, actor) -> Membership:
    """The invitee joins the project with the invited role (or keeps the role they already have)."""
    invitation = Invitation.objects.select_for_update(of=("self",)).select_related("project").get(pk=invitation.pk)
    _require_invitee(invitation, actor)
    membership, _created = Membership.objects.get_or_create(
        project=invitation.project, user=actor, defaults={"role": invitation.role}
    )
    # Invited under both a username and an e-mail: answering one answers both.
    Invitation.objects.filter(
        project=invitation.project, invitee=actor, status=Invitation.Status.PENDING
    ).update(status=Invitation.Status.ACCEPTED, responded_at=timezone.now())
    return membership


@transaction.atomic
def invitation_decline(*, invitation: Invitation, actor) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    _require_invitee(invitation, actor)
    Invitation.objects.filter(
        project_id=invitation.project_id, invitee=actor, status=Invitation.Status.PENDING
    ).update(status=Invitation.Status.DECLINED, responded_at=timezone.now())


@transaction.atomic
def invitation_cancel(*, invitation: Invitation, actor) -> None:
    """Owners withdraw a pending invitation."""
    require_owner(actor, invitation.project)
    if invitation.status != Invitation.Status.PENDING:
        raise ValidationError(f"This invitation was already {invitation.get_status_display().lower()}.")
    invitation.status = Invitation.Status.CANCELLED
    invitation.responded_at = timezone.now()
    invitation.save(update_fields=["status", "responded_at"])


def _owners_left_after(membership: Membership) -> int:
    return (
        Membership.objects.select_for_update()
        .filter(project=membership.project, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .count()
    )


@transaction.atomic
def member_change_role(*, membership: Membership, actor, role: str) -> Membership:
    require_owner(actor, membership.project)
    _check_role(role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError({"role": "A project needs at least one owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor) -> None:
    """Owners remove anyone; any member may leave. The last owner cannot go."""
    if membership.user_id != actor.pk:
        require_owner(actor, membership.project)
    if membership.role == Role.OWNER and _owners_left_after(membership) == 0:
        raise ValidationError("A project needs at least one owner: make someone else owner first.")
    project_id, user_id = membership.project_id, membership.user_id
    membership.delete()
    # Issue 14, F10: their run and dataset sockets for this project close now, not at the
    # consumers' next periodic access check.
    transaction.on_commit(lambda: close_member_sockets(project_id, user_id))
