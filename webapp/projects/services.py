"""Writes for projects and members. Each takes the acting user and checks their role."""
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from .access import require_owner, require_write
from .models import Membership, Project
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
    try:
        project.delete()
    except ProtectedError:
        raise ValidationError(
            "This project still holds datasets (or runs, models, predictions). Delete them first."
        )


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of: {', '.join(Role.values)}."})
    return role


@transaction.atomic
def member_invite(*, project: Project, actor, identifier: str, role: str = Role.VIEWER) -> Membership:
    """Add an existing user (by username or email) to the project. Owners only."""
    require_owner(actor, project)
    _check_role(role)
    user = user_find(identifier)
    if user is None:
        raise ValidationError(
            {"user": "No account has that username or email. Ask them to get an account first."}
        )
    if Membership.objects.filter(project=project, user=user).exists():
        raise ValidationError({"user": f"{user.username} is already a member of this project."})
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise ValidationError({"user": f"{user.username} is already a member of this project."})


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
    membership.delete()
