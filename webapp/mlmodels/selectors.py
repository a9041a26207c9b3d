"""Reads for registered models. Every read goes through project membership."""
from django.db.models import QuerySet

from webapp.projects.access import get_for_user, require_member, visible_to

from .models import TrainedModel


def model_list(*, user, project=None) -> QuerySet[TrainedModel]:
    qs = visible_to(TrainedModel.objects.select_related("project", "dataset", "run"), user)
    if project is not None:
        require_member(user, project)
        qs = qs.filter(project=project)
    return qs.order_by("-created", "-id")


def model_get(*, user, pk) -> TrainedModel:
    """The model if the user is a member of its project, else Http404."""
    return get_for_user(TrainedModel.objects.select_related("project", "dataset", "run"), user, pk)


BUNDLE_EXCLUDE = ("checkpoints", "events.jsonl")


def bundle_files(model: TrainedModel) -> list:
    """The files of the model's bundle (checkpoints left out), relative paths sorted."""
    root = model.bundle_path
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or path.is_symlink() or rel.parts[0] in BUNDLE_EXCLUDE or path.name.endswith(".tmp"):
            continue
        files.append(rel)
    return files
