"""Reads for predictions. Every read goes through project membership."""
import re

from django.db.models import QuerySet
from django.http import Http404

from webapp.datasets.models import Case
from webapp.projects.access import get_for_user, visible_to

from .models import Prediction


def prediction_list(*, user, model=None) -> QuerySet[Prediction]:
    qs = visible_to(Prediction.objects.select_related("project", "model"), user)
    if model is not None:
        qs = qs.filter(model=model)
    return qs.order_by("-created_at", "-id")


def prediction_get(*, user, pk) -> Prediction:
    """The prediction if the user is a member of its project, else Http404."""
    return get_for_user(Prediction.objects.select_related("project", "model", "source_case"), user, pk)


def prediction_file(*, user, pk, which: str):
    """(path, download name) of a prediction's input or label map; Http404 when absent."""
    prediction = prediction_get(user=user, pk=pk)
    stem = prediction.input_name
    for suffix in (".nii.gz", ".nii"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = stem.replace(" / ", "_").replace("/", "_") or f"prediction_{prediction.pk}"
    if which == "input":
        path, name = prediction.input_file, f"{stem}.nii.gz"
    else:
        if prediction.status != Prediction.Status.SUCCEEDED or prediction.output_file is None:
            raise Http404("The prediction has no result (yet).")
        path, name = prediction.output_file, f"{stem}_label.nii.gz"
    if not path.is_file():
        raise Http404("The file is gone.")
    return prediction, path, name


def prediction_attention_file(*, user, pk, name: str):
    """(prediction, path, download name) of one of a prediction's attention maps (by its file
    name, as listed in ``attention_maps``); Http404 otherwise."""
    prediction = prediction_get(user=user, pk=pk)
    entry = next((m for m in prediction.attention_maps or [] if m.get("file") == name), None)
    if prediction.status != Prediction.Status.SUCCEEDED or entry is None:
        raise Http404("The prediction has no such attention map.")
    path = prediction.attention_dir / entry["file"]
    if not path.is_file():
        raise Http404("The file is gone.")
    _, _, label_name = prediction_file(user=user, pk=pk, which="result")
    stem = label_name[: -len("_label.nii.gz")]
    return prediction, path, f"{stem}_{entry['file']}"


def pickable_cases(*, model) -> QuerySet[Case]:
    """Cases of ready datasets in the model's project (what the predict page offers)."""
    return (Case.objects.select_related("dataset")
            .filter(dataset__project_id=model.project_id, dataset__status="ready")
            .order_by("dataset__name", "dataset_id", "index"))


def case_get_for_model(*, model, pk) -> Case:
    try:
        return pickable_cases(model=model).get(pk=pk)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404("No such case in this project.")


# -- what the prediction page shows a researcher --------------------------------------------------
_WINDOWS = re.compile(r"^sliding window over \(([\d, ]+)\) with \(([\d, ]+)\) windows$")


def plain_progress(text: str) -> str:
    """The worker's progress line in a researcher's words (the engine's older wording,
    "sliding window over (66, 78, 63) with (32, 32, 32) windows", becomes "segmenting the
    volume (66 × 78 × 63 voxels after resampling), patch by patch")."""
    text = (text or "").strip()
    match = _WINDOWS.match(text)
    if match:
        shape = " × ".join(s.strip() for s in match.group(1).split(","))
        return f"segmenting the volume ({shape} voxels after resampling), patch by patch"
    if text.startswith("preprocessing "):
        return "preparing the volume (resampling and normalising it as the training data was)"
    if text.startswith("writing "):
        return "writing the label map"
    if text == "attention maps of the transformer ops":
        return "computing the attention maps of the transformer layers"
    return text


def reference_volumes(prediction: Prediction) -> list[dict]:
    """Per-class volumes of the reference label, when the input is a case of a dataset that
    has a label map: [{"value", "name", "voxels", "ml"}] for the model's classes whose value
    the dataset names alike ([] otherwise). Read from the label file once, then kept on the
    prediction (``reference_volumes``): a large label map takes a while to count."""
    if prediction.reference_volumes:
        return prediction.reference_volumes
    case = prediction.source_case
    if case is None or not case.label_path or case.label_file is None or not case.label_file.is_file():
        return []
    from webapp.predictions.services import class_volumes

    dataset_names = {str(k): str(v).strip().lower() for k, v in (case.dataset.labels or {}).items()}
    same = {k: v for k, v in (prediction.model.label_names or {}).items()
            if dataset_names.get(str(k)) == str(v).strip().lower()}
    if not [k for k in same if str(k) != "0"]:
        return []
    image = prediction.input_file if prediction.input_file.is_file() else case.image_file
    try:
        _, rows = class_volumes(case.label_file, image, same)
    except (OSError, ValueError, EOFError):
        return []
    Prediction.objects.filter(pk=prediction.pk).update(reference_volumes=rows)
    prediction.reference_volumes = rows
    return rows
