"""Writes for datasets: upload, import, delete."""
from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files.move import file_move_safe
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from nasengine.data.checks import DEFAULT_MAX_MEMORY_BYTES
from webapp.common.tasks import enqueue_on_commit
from webapp.projects.access import require_write

from .archives import ArchiveLimits, is_archive_name
from .events import dataset_changed
from .importing import ImportFailed, ImportLimits, nifti_stem, parse_labels, problem, run_import
from .models import Case, Dataset

log = logging.getLogger(__name__)

Status = Dataset.Status
#: An import that has been "importing" this long is taken to be dead: the dataset may be deleted.
STALE_IMPORT = timedelta(hours=1)
#: A job redelivered this often has killed its worker each time (e.g. out of memory): with acks
#: late and reject-on-worker-lost it would otherwise come back for ever and block the queue.
MAX_IMPORT_ATTEMPTS = 3
MODALITIES = ("CT", "MR", "PET", "US", "other")


def import_limits() -> ImportLimits:
    caps = settings.VOXELSEARCH
    return ImportLimits(
        archive=ArchiveLimits(
            max_total_bytes=caps["MAX_ARCHIVE_UNCOMPRESSED_BYTES"],
            max_members=caps["MAX_ARCHIVE_MEMBERS"],
            max_ratio=caps["MAX_COMPRESSION_RATIO"],
        ),
        max_voxels=caps["MAX_VOXELS_PER_VOLUME"],
        max_cases=caps["MAX_CASES"],
        max_memory_bytes=caps.get("MAX_PREPROCESS_BYTES", DEFAULT_MAX_MEMORY_BYTES),
    )


MAX_NAME_LENGTH = 200


def _safe_upload_name(name: str) -> str:
    base = Path((name or "").replace("\\", "/")).name
    try:
        cleaned = get_valid_filename(base)
    except SuspiciousFileOperation:  # nothing usable left, e.g. "***" or ".."
        cleaned = ""
    if not cleaned:
        raise ValidationError({"files": f"The file name {name!r} cannot be used."})
    if len(cleaned) > MAX_NAME_LENGTH:
        # Cutting it would cut the suffix (.nii.gz) or the _seg that pairs a label with its image.
        raise ValidationError({"files": f"The file name {name[:40]!r}… is longer than {MAX_NAME_LENGTH} characters; rename it."})
    return cleaned


def _store_upload(uploaded, target: Path) -> int:
    """Move (not read) a streamed upload into place; small in-memory files are written in chunks."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(uploaded, "temporary_file_path"):
        file_move_safe(uploaded.temporary_file_path(), str(target), allow_overwrite=False)
    else:
        with open(target, "xb") as out:
            for chunk in uploaded.chunks():
                out.write(chunk)
    return target.stat().st_size


def _classify(files) -> str:
    names = [getattr(f, "name", "") or "" for f in files]
    archives = [n for n in names if is_archive_name(n)]
    if archives:
        if len(names) != 1:
            raise ValidationError({"files": "Upload either NIfTI files or one archive, not both or several archives."})
        return Dataset.Source.ARCHIVE
    bad = [n for n in names if nifti_stem(Path(n).name) is None]
    if bad:
        raise ValidationError(
            {"files": f"Only .nii, .nii.gz, .zip and .tar.gz files can be uploaded; not: {', '.join(bad[:5])}."}
        )
    return Dataset.Source.FILES


def dataset_upload(
    *, project, actor, files: list, name: str = "", description: str = "", labels="", modality: str = "",
) -> Dataset:
    """Create a dataset from uploaded files and queue its import on the ``default`` queue.

    ``files``: several NIfTI files (paired by name) or one archive in MSD layout. For NIfTI files
    ``labels`` declares the classes (``"1: liver, 2: tumour"``); an archive's dataset.json does.
    """
    require_write(actor, project)
    files = [f for f in (files or []) if f is not None]
    if not files:
        raise ValidationError({"files": "Choose NIfTI files or one archive to upload."})
    source = _classify(files)
    declared: dict = {}
    channel_names: list[str] = []
    modality = (modality or "").strip()
    if source == Dataset.Source.FILES:
        try:
            declared = {str(k): v for k, v in parse_labels(labels).items()}
        except ValueError as exc:
            raise ValidationError({"labels": str(exc)})
        if modality and modality not in MODALITIES:
            raise ValidationError({"modality": f"Modality must be one of {', '.join(MODALITIES)}."})
        channel_names = [modality or "image"]
    names = [_safe_upload_name(f.name) for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationError({"files": f"Two uploaded files have the same name: {', '.join(duplicates)}."})
    name = (name or "").strip()
    if not name:
        first = names[0]
        name = (nifti_stem(first) or first.split(".")[0]) if source == Dataset.Source.ARCHIVE else f"Dataset of {len(files)} files"
    if len(name) > 200:
        raise ValidationError({"name": "Keep the name under 200 characters."})

    dataset = Dataset(
        project=project,
        name=name,
        description=(description or "").strip(),
        source=source,
        labels=declared,
        channel_names=channel_names,
        modality=modality,
        upload_names=names,
        created_by=actor,
    )
    try:
        with transaction.atomic():
            dataset.save()
            total = 0
            for uploaded, safe in zip(files, names):
                total += _store_upload(uploaded, dataset.upload_dir / safe)
            dataset.upload_bytes = total
            dataset.save(update_fields=["upload_bytes"])
            _queue_import(dataset.pk)
    except BaseException:
        shutil.rmtree(dataset.root, ignore_errors=True)
        raise
    return dataset


def _queue_import(dataset_id: int) -> None:
    """Send the import job once the dataset row is committed. A broker outage leaves it
    ``uploaded`` for the queue sweep; a job message that cannot be sent at all makes the dataset
    invalid with a clear reason rather than waiting forever."""
    from .tasks import import_dataset

    unsendable = problem(None, "The import could not be queued (the job could not be sent to the task queue). Upload again later.")
    enqueue_on_commit(import_dataset, dataset_id, on_error=lambda: _fail(dataset_id, [unsendable]))


def dataset_import_folder(*, project, actor, folder: Path, name: str = "", description: str = "", queue: bool = True) -> Dataset:
    """Create a dataset from an MSD-layout folder on the server (used by ``seed_demo``).

    The folder is copied, then imported like an upload: queued on the ``default`` queue, or run
    here and now with ``queue=False``.
    """
    require_write(actor, project)
    folder = Path(folder)
    if not (folder / "dataset.json").is_file():
        raise ValidationError({"folder": f"The folder {folder.name!r} holds no dataset.json (MSD layout)."})
    dataset = Dataset(
        project=project, name=(name or folder.name).strip()[:200], description=description,
        source=Dataset.Source.FOLDER, created_by=actor,
    )
    try:
        with transaction.atomic():
            dataset.save()
            shutil.copytree(folder, dataset.upload_dir, symlinks=False)
            dataset.upload_bytes = sum(p.stat().st_size for p in dataset.upload_dir.rglob("*") if p.is_file())
            dataset.save(update_fields=["upload_bytes"])
            if queue:
                _queue_import(dataset.pk)
    except BaseException:
        shutil.rmtree(dataset.root, ignore_errors=True)
        raise
    if not queue:
        dataset = dataset_import(dataset_id=dataset.pk)
    return dataset


def _fail(dataset_id: int, problems: list[dict], root: Path | None = None) -> Dataset | None:
    """Mark the dataset invalid with its problems and remove every file it had; return it.

    A dataset that is ready already (another delivery of the same job finished it) keeps its
    cases and files: this delivery's failure must not undo that import.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
        if dataset is not None and dataset.status == Status.READY:
            log.warning("Dataset %s is ready already; a failed duplicate import changes nothing", dataset_id)
            return dataset
        if root is None and dataset is not None:
            root = dataset.root
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        if dataset is None:  # deleted meanwhile: nothing left to mark
            return None
        dataset.cases.all().delete()
        if dataset.status != Status.INVALID:
            dataset.transition(Status.INVALID, problems=problems)
    dataset_changed(dataset)
    return dataset


def _remove_raw_uploads(dataset: Dataset) -> None:
    """The raw uploads may carry patient information in their headers: only scrubbed copies stay."""
    shutil.rmtree(dataset.upload_dir, ignore_errors=True)
    shutil.rmtree(dataset.work_dir, ignore_errors=True)


def dataset_import(*, dataset_id: int) -> Dataset | None:
    """Import an uploaded dataset: all or nothing. Safe to run twice (acks-late redelivery)."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
        if dataset is None:
            return None
        if dataset.is_final:
            if dataset.status == Status.READY:  # a worker died between committing and cleaning up
                _remove_raw_uploads(dataset)
            return dataset
        dataset.import_attempts += 1
        dataset.save(update_fields=["import_attempts"])
        if dataset.status == Status.UPLOADED:
            dataset.transition(Status.IMPORTING)
        # status IMPORTING: a redelivered job after a worker died; run_import starts clean.
    if dataset.import_attempts > MAX_IMPORT_ATTEMPTS:
        return _fail(dataset_id, [problem(None, (
            f"The import stopped without finishing {MAX_IMPORT_ATTEMPTS} times (the worker was lost, "
            "for example because it ran out of memory). Try smaller volumes or ask the administrators."
        ))])
    dataset_changed(dataset)
    try:
        result = run_import(
            source=dataset.source,
            upload_dir=dataset.upload_dir,
            work_dir=dataset.work_dir,
            msd_dir=dataset.msd_dir,
            preview_dir=dataset.preview_dir,
            name=dataset.name,
            labels=dataset.labels,
            channel_names=dataset.channel_names,
            limits=import_limits(),
        )
    except ImportFailed as failed:
        return _fail(dataset_id, failed.problems, dataset.root)
    except Exception:
        log.exception("Import of dataset %s failed unexpectedly", dataset_id)
        return _fail(dataset_id, [problem(None, "The import failed because of an internal error; the administrators can find the details in the worker's log.")], dataset.root)
    try:
        with transaction.atomic():
            dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
            if dataset.status == Status.READY:  # another delivery of this job finished first
                return dataset
            media = Path(settings.MEDIA_ROOT)
            Case.objects.bulk_create(
                Case(
                    dataset=dataset,
                    case_id=c.case_id,
                    index=c.index,
                    split=c.split,
                    image_path=str((dataset.msd_dir / c.image_rel).relative_to(media)),
                    label_path=str((dataset.msd_dir / c.label_rel).relative_to(media)) if c.label_rel else "",
                    preview_path=str((dataset.preview_dir / c.preview_name).relative_to(media)),
                    original_image_name=c.original_image_name[:255],
                    original_label_name=c.original_label_name[:255],
                    shape=c.shape,
                    n_channels=c.n_channels,
                    spacing=c.spacing,
                    dtype=c.dtype,
                    label_values=c.label_values,
                    size_bytes=c.size_bytes,
                )
                for c in result.cases
            )
            dataset.labels = result.labels
            dataset.channel_names = result.channel_names
            dataset.modality = result.modality
            dataset.fingerprint = result.fingerprint
            dataset.num_cases = sum(1 for c in result.cases if c.split == "train")
            dataset.num_test_cases = sum(1 for c in result.cases if c.split == "test")
            dataset.size_bytes = result.size_bytes
            dataset.problems = []
            dataset.notes = result.notes
            dataset.save(
                update_fields=["labels", "channel_names", "modality", "fingerprint", "num_cases", "num_test_cases",
                               "size_bytes", "problems", "notes"]
            )
            dataset.transition(Status.READY)
    except Exception:
        log.exception("Saving the import of dataset %s failed", dataset_id)
        return _fail(dataset_id, [problem(None, "The import failed while saving its results; nothing was kept.")], dataset.root)
    _remove_raw_uploads(dataset)
    dataset_changed(dataset)
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset, actor) -> None:
    """Delete a dataset, its cases and all its files. Refused while the import runs."""
    require_write(actor, dataset.project)
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    stale = timezone.now() - dataset.status_changed_at > STALE_IMPORT
    if dataset.status == Status.IMPORTING and not stale:
        raise ValidationError("The dataset is being imported; wait until it is ready or invalid, then delete it.")
    dataset_purge(dataset=dataset)


@transaction.atomic
def dataset_purge(*, dataset: Dataset) -> None:
    """Delete a dataset's rows, then (once that commits) its files. No role check: for the admin
    and housekeeping; users go through ``dataset_delete``."""
    root = dataset.root
    dataset.delete()
    transaction.on_commit(lambda: shutil.rmtree(root, ignore_errors=True))


@transaction.atomic
def dataset_update(*, dataset: Dataset, actor, name=None, description=None) -> Dataset:
    require_write(actor, dataset.project)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            raise ValidationError({"name": "Give the dataset a name under 200 characters."})
        dataset.name = name
    if description is not None:
        dataset.description = description.strip()
    dataset.save(update_fields=["name", "description", "updated_at"])
    return dataset
