"""Reads for datasets and cases. Every read goes through project membership."""
from pathlib import Path

from django.db.models import QuerySet
from django.http import Http404

from webapp.projects.access import get_for_user, require_member, visible_to

from .models import Case, Dataset


def dataset_list(*, user, project=None) -> QuerySet[Dataset]:
    qs = visible_to(Dataset.objects.select_related("project"), user)
    if project is not None:
        require_member(user, project)
        qs = qs.filter(project=project)
    return qs.order_by("-created_at", "-id")


def dataset_get(*, user, pk) -> Dataset:
    return get_for_user(Dataset.objects.select_related("project"), user, pk)


def dataset_get_or_none(*, user, pk) -> Dataset | None:
    try:
        return dataset_get(user=user, pk=pk)
    except Http404:
        return None


def case_list(*, dataset: Dataset, split: str | None = None) -> QuerySet[Case]:
    """The dataset's cases by index; ``split`` ``"train"`` or ``"test"`` keeps one split."""
    qs = dataset.cases.order_by("index")
    return qs.filter(split=split) if split else qs


def case_get(*, user, dataset_pk, pk) -> Case:
    dataset = dataset_get(user=user, pk=dataset_pk)
    return get_for_user(Case.objects.filter(dataset=dataset), user, pk, project_path="dataset__project")


def case_preview_get(*, user, dataset_pk, pk) -> Path:
    """The preview PNG of a case the user may see, else Http404."""
    path = case_get(user=user, dataset_pk=dataset_pk, pk=pk).preview_file
    if path is None or not path.is_file():
        raise Http404("No preview.")
    return path
