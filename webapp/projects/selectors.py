"""Reads for projects and members."""
from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, QuerySet, Subquery

from .access import get_for_user, visible_to
from .models import Membership, Project


def project_list(*, user) -> QuerySet[Project]:
    role = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return (
        visible_to(Project.objects.all(), user, project_path="")
        .annotate(user_role=Subquery(role), member_count=Count("memberships", distinct=True))
        .order_by("name", "id")
    )


def project_get(*, user, pk) -> Project:
    """The project if ``user`` is a member (with ``user_role`` set), else Http404."""
    project = get_for_user(project_list(user=user), user, pk, project_path="")
    return project


def member_list(*, project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def membership_get(*, user, project_pk, membership_pk) -> Membership:
    project = project_get(user=user, pk=project_pk)
    return get_for_user(
        Membership.objects.filter(project=project).select_related("user", "project"),
        user,
        membership_pk,
    )


def user_find(identifier: str):
    """An active user by exact (case-insensitive) username or email, or None."""
    identifier = (identifier or "").strip()
    if not identifier:
        return None
    users = get_user_model().objects.filter(is_active=True)
    user = users.filter(username__iexact=identifier).first()
    if user is None and "@" in identifier:
        matches = list(users.filter(email__iexact=identifier)[:2])
        user = matches[0] if len(matches) == 1 else None
    return user


#: How many runs and predictions the project page lists (the runs page and the predictions page
#: list them all).
PROJECT_PAGE_LIMIT = 20


def project_contents(*, user, project: Project) -> dict:
    """What the project page lists: its datasets, runs, models and predictions, newest first,
    each with its status (runs and predictions: the newest PROJECT_PAGE_LIMIT, with totals)."""
    from webapp.datasets.selectors import dataset_list
    from webapp.mlmodels.selectors import model_list
    from webapp.predictions.models import Prediction
    from webapp.runs.selectors import run_list

    runs = run_list(user=user, project=project)
    predictions = (Prediction.objects.filter(project=project).select_related("model", "source_case")
                   .order_by("-created_at", "-id"))
    return {
        "datasets": dataset_list(user=user, project=project),
        "runs": runs[:PROJECT_PAGE_LIMIT], "run_count": runs.count(),
        "models": model_list(user=user, project=project),
        "predictions": predictions[:PROJECT_PAGE_LIMIT], "prediction_count": predictions.count(),
    }
