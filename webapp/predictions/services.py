"""Writes for predictions: create from uploads or dataset cases, run (Celery), delete.

Uploaded volumes are checked in the request, in constant memory, with nasengine's checks,
cheapest first and before any copy is made: ``check_nifti_bytes`` (the same raw-byte check as
the dataset import: header and extension sizes, pixdim, the voxel cap, the memory estimate,
then one bounded streaming pass for truncation and trailing data, so a small .nii.gz hiding
gigabytes after its voxels is refused after reading about its voxel data), then the header
through nibabel (``inspect_nifti``: dimensionality, dtype, affine; the channel count against
the model), and only then the one copy that clears the identifying header text
(``clear_header_text``). A batch is all or nothing: one bad file and no
prediction is created, nothing is kept. The worker reads the data with ``check_image`` (NaN,
Inf) before it predicts. For a model with transformer ops (DAST) the worker also writes the
attention maps of the ops asked for (all by default) beside the label map; for any other model
nothing is computed.
"""
from __future__ import annotations

import logging
import shutil
import traceback
from pathlib import Path

import nibabel as nib
import numpy as np
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction

from nasengine.data.checks import DEFAULT_MAX_MEMORY_BYTES, check_nifti_bytes
from nasengine.data.errors import DataError, scrub_paths
from nasengine.data.io import clear_header_text, inspect_nifti
from webapp.common.tasks import enqueue_on_commit
from webapp.datasets.importing import MAX_HEADER_BYTES, nifti_stem
from webapp.projects.access import require_write

from .models import Prediction

log = logging.getLogger(__name__)

Status = Prediction.Status
#: A job delivered this often killed its worker each time (e.g. out of memory): give up.
MAX_ATTEMPTS = 3
#: Most volumes (files or cases) in one request.
MAX_BATCH = 50


def _max_voxels() -> int:
    return int(settings.VOXELSEARCH["MAX_VOXELS_PER_VOLUME"])


def model_in_channels(model) -> int:
    """Channels the model takes (bundle.json's in_channels, else its channel names)."""
    try:
        from nasengine.inference.bundle import read_bundle

        n = read_bundle(model.bundle_path).info.get("in_channels")
        if n:
            return int(n)
    except Exception:  # noqa: BLE001 - an unreadable bundle fails later, with the engine's message
        pass
    return max(1, len(model.channel_names or []))


def model_attention_sites(model) -> list[dict]:
    """The model's transformer ops that have attention maps (``id``, ``source``, ``target``,
    ``layer``, ``level``); empty for models without them or with an unreadable bundle."""
    try:
        from nasengine.inference.explain import attention_sites

        return attention_sites(model.bundle_path)
    except Exception:  # noqa: BLE001 - an unreadable bundle fails later, with the engine's message
        return []


def _attention_request(model, attention) -> list[str]:
    """The site ids asked for, checked against the model's; [] means every one."""
    wanted = [str(a) for a in (attention or []) if str(a)]
    if not wanted:
        return []
    known = {s["id"] for s in model_attention_sites(model)}
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise ValidationError({"attention": f"The model has no transformer op at {', '.join(unknown)}."})
    return sorted(set(wanted), key=wanted.index)


#: Words a form or an API client may send for a yes/no setting.
_TRUE_WORDS = {"true", "1", "on", "yes"}
_FALSE_WORDS = {"false", "0", "off", "no", ""}


def _overlap_value(value) -> float:
    """The sliding-window overlap, 0 <= overlap < 1; 0.5 when not given (nnU-Net's default)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.5
    try:
        overlap = float(value)
    except (TypeError, ValueError):
        raise ValidationError({"overlap": f"The overlap must be a number from 0 to below 1 (e.g. 0.5), not {str(value)[:40]!r}."})
    # Choice: 1 (or more) would never move the window; NaN compares false both ways.
    if not (0.0 <= overlap < 1.0):
        raise ValidationError({"overlap": f"The overlap must be from 0 to below 1 (e.g. 0.5); {str(value)[:40]} is outside."})
    return overlap


def _flag_value(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    word = "" if value is None else str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValidationError({field: f"{field.replace('_', ' ').capitalize()} must be true or false, not {str(value)[:40]!r}."})


def _postprocess_value(value) -> str:
    word = "auto" if value is None or not str(value).strip() else str(value).strip().lower()
    known = Prediction.Postprocess.values
    if word not in known:
        raise ValidationError({"postprocess": f"Post-processing must be one of {', '.join(known)} (auto: as decided on the model's validation cases), not {str(value)[:40]!r}."})
    return word


def model_ensemble(model):
    """The model's finished k-fold ensemble (a succeeded ``FoldSet`` whose ensemble folder
    exists), else None."""
    try:
        fold_set = model.fold_set
    except ObjectDoesNotExist:  # the model has no fold set
        return None
    path = fold_set.ensemble_path
    if fold_set.status != "succeeded" or path is None or not (path / "ensemble.json").is_file():
        return None
    return fold_set


def prediction_options(model, *, overlap=None, mirror=None, postprocess=None, use_ensemble=None) -> dict:
    """The inference settings of a prediction, checked: ``overlap`` (0 to below 1, default
    0.5), ``mirror`` (mirroring test-time augmentation, default off), ``postprocess``
    (``auto``/``none``/``lcc``, default ``auto``) and ``use_ensemble`` (the model's finished
    k-fold ensemble; default off). Values may be the strings a form sends.
    Raises ValidationError naming the setting."""
    options = {"overlap": _overlap_value(overlap), "mirror": _flag_value(mirror, "mirror"),
               "postprocess": _postprocess_value(postprocess),
               "use_ensemble": _flag_value(use_ensemble, "use_ensemble")}
    if options["use_ensemble"] and model_ensemble(model) is None:
        raise ValidationError({"use_ensemble": "The model has no finished k-fold ensemble to predict with; train its folds first."})
    return options


def _display_name(name: str) -> str:
    base = Path((name or "").replace("\\", "/")).name
    return base[:255] or "volume"


def _max_memory() -> int:
    return int(settings.VOXELSEARCH.get("MAX_PREPROCESS_BYTES", DEFAULT_MAX_MEMORY_BYTES))


def _check_upload(path: Path, display: str, n_channels: int) -> dict:
    """Cheapest-first checks of one uploaded file, before any copy; returns its header facts or
    raises DataError."""
    check_nifti_bytes(path, max_voxels=_max_voxels(), max_header_bytes=MAX_HEADER_BYTES,
                      max_memory_bytes=_max_memory(), role="image")
    info = inspect_nifti(path, max_voxels=_max_voxels())
    if info.n_channels != n_channels:
        raise DataError(
            path,
            f"the volume has {info.n_channels} channel(s) but the model takes {n_channels} "
            f"({'one 3D volume' if n_channels == 1 else f'a 4D volume with {n_channels} channels'})",
        )
    return {"shape": list(info.shape), "spacing": [round(s, 6) for s in info.spacing], "n_channels": info.n_channels}


def _problem_text(display: str, error: DataError) -> str:
    return f"{display}: {error.problem}"


def _new_prediction(*, model, actor, input_name: str, source_case=None) -> Prediction:
    prediction = Prediction(project=model.project, model=model, input_name=input_name,
                            source_case=source_case, created_by=actor)
    prediction.input_path = str((prediction.root / Prediction.INPUT_NAME).relative_to(settings.MEDIA_ROOT))
    return prediction


def _store_input(prediction: Prediction, raw: Path) -> None:
    """Scrubbed copy of ``raw`` as the prediction's input (streams; detects truncation)."""
    target = prediction.root / Prediction.INPUT_NAME
    clear_header_text(raw, target)
    prediction.input_bytes = target.stat().st_size


def _raw_path(uploaded) -> Path | None:
    """The temporary file a streamed upload was written to (None for in-memory uploads)."""
    return Path(uploaded.temporary_file_path()) if hasattr(uploaded, "temporary_file_path") else None


def prediction_create(*, model, actor, files=(), cases=(), attention=(), options=None) -> list[Prediction]:
    """Create one queued prediction per uploaded NIfTI file and per dataset case; all or nothing.

    ``files``: uploaded files (streamed to temporary files by the upload handler).
    ``cases``: ``datasets.Case`` objects of ready datasets in the model's project.
    ``attention``: site ids of the model's transformer ops whose attention maps to store
    (empty: every one; ignored by models without them).
    ``options``: the inference settings (see :func:`prediction_options`; unchecked values are
    checked here), shared by every prediction of the batch.
    Raises ValidationError (naming the file) when any input is unusable; nothing is stored then.
    """
    require_write(actor, model.project)
    files = [f for f in (files or []) if f is not None]
    cases = list(cases or [])
    if not files and not cases:
        raise ValidationError({"files": "Choose one or more NIfTI volumes (.nii or .nii.gz) or cases of a dataset."})
    if len(files) + len(cases) > MAX_BATCH:
        raise ValidationError({"files": f"At most {MAX_BATCH} volumes at once."})
    n_channels = model_in_channels(model)
    attention_request = _attention_request(model, attention)
    settings_ = prediction_options(model, **(options or {}))
    for case in cases:
        if case.dataset.project_id != model.project_id or case.dataset.status != "ready":
            raise ValidationError({"cases": "Pick cases of a ready dataset in this model's project."})
        if case.n_channels != n_channels:
            raise ValidationError({"cases": f"{case.dataset.name} / {case.case_id}: the case has {case.n_channels} channel(s) but the model takes {n_channels}."})

    # Files first, outside any transaction (streaming a big volume must not hold the database's
    # write lock); then every row in one short transaction. Any failure removes every folder.
    created: list[Prediction] = []
    try:
        for uploaded in files:
            display = _display_name(getattr(uploaded, "name", ""))
            if nifti_stem(display) is None:
                raise ValidationError({"files": f"{display}: only NIfTI volumes (.nii or .nii.gz) can be segmented."})
            prediction = _new_prediction(model=model, actor=actor, input_name=display)
            prediction.root.mkdir(parents=True, exist_ok=False)
            created.append(prediction)
            # Named like the upload so nibabel tells .nii from .nii.gz; moved, not read.
            raw = prediction.root / ("upload" + (".nii.gz" if display.lower().endswith(".gz") else ".nii"))
            if _raw_path(uploaded) is not None:
                shutil.move(str(_raw_path(uploaded)), raw)
            else:  # a small in-memory upload (other upload handlers): written out in chunks
                with open(raw, "xb") as out:
                    for chunk in uploaded.chunks():
                        out.write(chunk)
            try:
                facts = _check_upload(raw, display, n_channels)
                _store_input(prediction, raw)
            except DataError as error:
                raise ValidationError({"files": _problem_text(display, error)})
            raw.unlink(missing_ok=True)
            prediction.shape, prediction.spacing, prediction.n_channels = facts["shape"], facts["spacing"], facts["n_channels"]
        for case in cases:
            prediction = _new_prediction(model=model, actor=actor, source_case=case,
                                         input_name=f"{case.dataset.name} / {case.case_id}"[:255])
            prediction.root.mkdir(parents=True, exist_ok=False)
            created.append(prediction)
            shutil.copyfile(case.image_file, prediction.root / Prediction.INPUT_NAME)  # stored scrubbed already
            prediction.input_bytes = (prediction.root / Prediction.INPUT_NAME).stat().st_size
            prediction.shape, prediction.spacing, prediction.n_channels = list(case.shape), list(case.spacing), case.n_channels
        with transaction.atomic():
            for prediction in created:
                prediction.attention_request = attention_request
                for field, value in settings_.items():
                    setattr(prediction, field, value)
                prediction.save()
                _queue(prediction.pk)
    except BaseException:
        for prediction in created:
            shutil.rmtree(prediction.root, ignore_errors=True)
        raise
    return created


def _queue(prediction_id: int) -> None:
    from .tasks import run_prediction

    enqueue_on_commit(run_prediction, prediction_id, on_error=lambda: _fail(
        prediction_id, "The prediction could not be queued (the job could not be sent to the task queue). Try again later."))


def _fail(prediction_id: int, error: str) -> Prediction | None:
    with transaction.atomic():
        prediction = Prediction.objects.select_for_update().filter(pk=prediction_id).first()
        if prediction is None or prediction.is_final:
            return prediction
        prediction.transition(Status.FAILED, error=error[:4000])
    if prediction.output_file is not None:
        prediction.output_file.unlink(missing_ok=True)
    return prediction


def class_volumes(label_path: Path, input_path: Path, labels: dict) -> tuple[float, list[dict]]:
    """(voxel volume in mL, per-class rows): voxel counts of the label NIfTI x the voxel volume
    from the input header's zooms (mm^3 / 1000). The label map lies on the input's grid."""
    zooms = [float(z) for z in nib.load(str(input_path)).header.get_zooms()[:3]]
    voxel_ml = float(np.prod(zooms)) / 1000.0
    data = np.asanyarray(nib.load(str(label_path)).dataobj)
    counts = np.bincount(data.ravel().astype(np.int64), minlength=256)
    rows = []
    for value, name in sorted(((int(k), v) for k, v in (labels or {}).items())):
        if value == 0:
            continue
        voxels = int(counts[value]) if value < len(counts) else 0
        rows.append({"value": value, "name": name, "voxels": voxels, "ml": voxels * voxel_ml})
    return voxel_ml, rows


def prediction_run(*, prediction_id: int) -> Prediction | None:
    """Segment the prediction's input with its model (the Celery task calls this).

    Safe to deliver twice (acks late): a final prediction is left alone; a running one whose
    worker died is run again (the output is written to a temporary name, then moved).
    """
    from nasengine import api
    from nasengine.data.checks import check_image
    from nasengine.inference.bundle import BundleError

    with transaction.atomic():
        prediction = Prediction.objects.select_for_update(of=("self",)).select_related("model").filter(pk=prediction_id).first()
        if prediction is None or prediction.is_final:
            return prediction
        prediction.attempts += 1
        prediction.save(update_fields=["attempts"])
        if prediction.attempts > MAX_ATTEMPTS:
            prediction.transition(Status.FAILED, error=f"The prediction stopped its worker {MAX_ATTEMPTS} times (out of memory?); it was given up.")
            return prediction
        if prediction.status == Status.QUEUED:
            prediction.transition(Status.RUNNING)
    model = prediction.model
    out_rel = str((prediction.root / Prediction.OUTPUT_NAME).relative_to(settings.MEDIA_ROOT))
    target = Path(settings.MEDIA_ROOT) / out_rel
    partial = target.with_name(".label.partial.nii.gz")
    attention_partial = prediction.root / ".attention.partial"

    def progress(message: str) -> None:
        Prediction.objects.filter(pk=prediction_id).update(progress=str(message)[:300])

    try:
        progress("checking the volume")
        check_image(prediction.input_file, n_channels=model_in_channels(model), max_voxels=_max_voxels())
        api.predict(_predictor_path(prediction, model), prediction.input_file, partial,
                    overlap=prediction.overlap, mirror=prediction.mirror,
                    postprocess=prediction.postprocess, progress=progress)
        partial.replace(target)
        voxel_ml, rows = class_volumes(target, prediction.input_file, model.label_names)
        attention_maps = _write_attention(prediction, model, attention_partial, progress)
    except (DataError, BundleError) as error:
        partial.unlink(missing_ok=True)
        shutil.rmtree(attention_partial, ignore_errors=True)
        text = (f"{prediction.input_name}: {error.problem}" if isinstance(error, DataError)
                else f"The model cannot be used: {scrub_paths(str(error))}")
        return _fail(prediction_id, text)
    except Exception as error:  # noqa: BLE001 - recorded on the prediction, logged with its trace
        partial.unlink(missing_ok=True)
        shutil.rmtree(attention_partial, ignore_errors=True)
        log.error("Prediction %s failed:\n%s", prediction_id, traceback.format_exc())
        first = scrub_paths((str(error).strip().splitlines() or [type(error).__name__])[0])
        return _fail(prediction_id, f"The prediction failed: {type(error).__name__}: {first}")
    with transaction.atomic():
        prediction = Prediction.objects.select_for_update().get(pk=prediction_id)
        if prediction.is_final:
            return prediction
        prediction.output_path = out_rel
        prediction.voxel_volume_ml = voxel_ml
        prediction.volumes = rows
        prediction.attention_maps = attention_maps
        prediction.progress = ""
        prediction.save(update_fields=["output_path", "voxel_volume_ml", "volumes", "attention_maps", "progress"])
        prediction.transition(Status.SUCCEEDED)
    return prediction


def _predictor_path(prediction: Prediction, model) -> Path:
    """The folder ``api.predict`` reads: the model's bundle, or its k-fold ensemble folder when
    the prediction asked for it (a DataError when that ensemble has gone since)."""
    if not prediction.use_ensemble:
        return model.bundle_path
    fold_set = model_ensemble(model)
    if fold_set is None:
        raise DataError(prediction.input_file, "the model's k-fold ensemble is no longer there; predict again with the model alone")
    return fold_set.ensemble_path


def _write_attention(prediction: Prediction, model, partial: Path, progress) -> list[dict]:
    """The attention maps asked for, written into a partial folder then moved to
    ``prediction.attention_dir``; [] (nothing computed) for models without transformer ops."""
    from nasengine.inference.explain import attention_sites, write_attention_maps

    if not attention_sites(model.bundle_path):
        return []
    progress("attention maps of the transformer ops")
    shutil.rmtree(partial, ignore_errors=True)
    maps = write_attention_maps(model.bundle_path, prediction.input_file, partial,
                                which=prediction.attention_request or None)
    shutil.rmtree(prediction.attention_dir, ignore_errors=True)
    partial.replace(prediction.attention_dir)
    return maps


def prediction_delete(*, prediction: Prediction, actor) -> None:
    """Delete a prediction and its files (input and label map). Not while it runs."""
    require_write(actor, prediction.project)
    if prediction.status == Status.RUNNING:
        raise ValidationError("The prediction is running; delete it once it has finished.")
    root = prediction.root
    prediction.delete()
    transaction.on_commit(lambda: shutil.rmtree(root, ignore_errors=True))
