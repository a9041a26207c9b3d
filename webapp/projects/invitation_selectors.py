"""Reads for invitations (issue 14, F9): invitees see their own, owners see their project's."""
from django.db.models import QuerySet
from django.http import Http404

from .access import require_owner
from .models import Invitation, Project
from .selectors import project_get


def invitation_list_mine(*, user) -> QuerySet[Invitation]:
    """The pending invitations addressed to ``user``."""
    if not getattr(user, "is_authenticated", False):
        return Invitation.objects.none()
    return (Invitation.objects.filter(invitee=user, status=Invitation.Status.PENDING)
            .select_related("project", "invited_by").order_by("-created_at", "-id"))


def invitation_get_mine(*, user, pk) -> Invitation:
    """An invitation addressed to ``user`` (any status), else Http404."""
    try:
        return Invitation.objects.select_related("project").get(pk=int(pk), invitee=user)
    except (Invitation.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.")


def invitation_list_pending(*, project: Project) -> QuerySet[Invitation]:
    """A project's pending invitations (for its owners; never with the invitee's account)."""
    return project.invitations.filter(status=Invitation.Status.PENDING).select_related("invited_by")


def invitation_get_for_owner(*, user, project_pk, pk) -> Invitation:
    """A pending-or-answered invitation of a project ``user`` owns (404 outside it, 403 to non-owners)."""
    project = project_get(user=user, pk=project_pk)
    require_owner(user, project)
    try:
        return project.invitations.select_related("project").get(pk=int(pk))
    except (Invitation.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.")
