"""Per-object access: who reaches what.

The rule everywhere (pages, API, sockets): a user reaches only objects of projects they are a
member of; anything else answers 404 (not 403), so other projects' objects are not even
revealed to exist. Members who may read but not write (viewers) get 403 on writes.

Other apps use ``get_for_user(queryset, user, pk)`` for any model with a ``project`` foreign key
(or pass ``project_path`` for deeper relations, e.g. ``"dataset__project"``).
"""
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from .models import WRITE_ROLES, Membership, Project


def visible_to(queryset: QuerySet, user, project_path: str = "project") -> QuerySet:
    """Restrict ``queryset`` to objects whose project has ``user`` as a member."""
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    project_ids = Membership.objects.filter(user=user).values("project_id")
    lookup = f"{project_path}__in" if project_path else "pk__in"
    return queryset.filter(**{lookup: project_ids})


def get_for_user(queryset: QuerySet, user, pk, project_path: str = "project"):
    """The object with ``pk`` if the user is a member of its project, else ``Http404``."""
    try:
        return visible_to(queryset, user, project_path).get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.")


def role_of(user, project: Project) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def require_member(user, project: Project) -> str:
    role = role_of(user, project)
    if role is None:
        raise Http404("Not found.")
    return role


def require_write(user, project: Project) -> str:
    """Owners and editors may change a project's contents; viewers get 403."""
    role = require_member(user, project)
    if role not in WRITE_ROLES:
        raise PermissionDenied("Viewers can look but not change anything in this project.")
    return role


def require_owner(user, project: Project) -> str:
    role = require_member(user, project)
    if role != Membership.Role.OWNER:
        raise PermissionDenied("Only the project's owners can do this.")
    return role
