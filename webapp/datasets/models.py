import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.common.status import IllegalTransition, StatusMachine  # noqa: F401 (IllegalTransition re-exported)
from webapp.projects.models import Project


class Dataset(StatusMachine, models.Model):
    """A set of image/label volumes imported into a project.

    Files live under ``MEDIA_ROOT/datasets/<storage_key>/``; once ready, ``msd/`` there is a
    Medical Segmentation Decathlon layout (``dataset.json``, ``imagesTr/``, ``labelsTr/``) with
    scrubbed headers and generated names, which is what the engine reads.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        INVALID = "invalid", "Invalid"

    class Source(models.TextChoices):
        FILES = "files", "NIfTI files"
        ARCHIVE = "archive", "Archive (MSD layout)"
        FOLDER = "folder", "Folder on the server (MSD layout)"

    #: The state machine: uploaded -> importing -> ready | invalid (an upload that cannot even be
    #: queued may go straight to invalid). ready and invalid are final.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.UPLOADED: frozenset({Status.IMPORTING, Status.INVALID}),
        Status.IMPORTING: frozenset({Status.READY, Status.INVALID}),
        Status.READY: frozenset(),
        Status.INVALID: frozenset(),
    }

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    source = models.CharField(max_length=16, choices=Source.choices)
    storage_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    #: {"0": "background", "1": "liver", ...}: declared classes (from the form or dataset.json).
    labels = models.JSONField(default=dict, blank=True)
    channel_names = models.JSONField(default=list, blank=True)
    modality = models.CharField(max_length=32, blank=True)
    fingerprint = models.JSONField(null=True, blank=True)
    #: Why the import failed: [{"file": "case1.nii.gz", "problem": "..."}].
    problems = models.JSONField(default=list, blank=True)
    #: What the import noticed but accepted: [{"file": "...", "note": "..."}], e.g. test images
    #: that dataset.json lists but the archive lacks (as MSD publishes its datasets).
    notes = models.JSONField(default=list, blank=True)
    upload_names = models.JSONField(default=list, blank=True)
    upload_bytes = models.BigIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    #: Training cases (what search and retraining use, split into train/validation).
    num_cases = models.PositiveIntegerField(default=0)
    #: Held-out test cases (``Case.split == "test"``): never used for training or validation.
    num_test_cases = models.PositiveIntegerField(default=0)
    #: How many times an import job started on this dataset (a redelivered job counts again).
    import_attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    # -- the one place where status changes: StatusMachine.transition() -----------------------
    STATUS_NOUN = "dataset"

    def on_transition(self, new_status, now, *, problems: list[dict] | None = None) -> list[str]:
        """``problems`` (for ``invalid``) is the list of ``{"file", "problem"}`` reasons."""
        fields = ["updated_at"]  # auto_now: saved with every status change
        if problems is not None:
            self.problems = problems
            fields.append("problems")
        return fields

    # -- files --------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "datasets" / str(self.storage_key)

    @property
    def upload_dir(self) -> Path:
        return self.root / "upload"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def msd_dir(self) -> Path:
        """The imported dataset in MSD layout: what ``nasengine.data.dataset.load_dataset`` reads."""
        return self.root / "msd"

    @property
    def preview_dir(self) -> Path:
        return self.root / "previews"

    @property
    def class_names(self) -> list[tuple[int, str]]:
        return sorted((int(k), v) for k, v in (self.labels or {}).items())


class Case(models.Model):
    """One image/label pair of a ready dataset, stored under generated names.

    ``split`` is ``train`` (``imagesTr/``: search and retraining split these into training and
    validation) or ``test`` (``imagesTs/``: held out, for evaluation only; the label map may be
    absent, as MSD ships its test images without labels).
    """

    class Split(models.TextChoices):
        TRAIN = "train", "Training"
        TEST = "test", "Test"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=200)
    index = models.PositiveIntegerField()
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    #: Paths relative to MEDIA_ROOT ("" label_path: a test case without a label map).
    image_path = models.CharField(max_length=500)
    label_path = models.CharField(max_length=500, blank=True)
    preview_path = models.CharField(max_length=500, blank=True)
    original_image_name = models.CharField(max_length=255, blank=True)
    original_label_name = models.CharField(max_length=255, blank=True)
    shape = models.JSONField(default=list)
    n_channels = models.PositiveSmallIntegerField(default=1)
    spacing = models.JSONField(default=list)
    dtype = models.CharField(max_length=32, blank=True)
    label_values = models.JSONField(default=list)
    size_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["dataset_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "case_id"], name="unique_case_id"),
            models.UniqueConstraint(fields=["dataset", "index"], name="unique_case_index"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} / {self.case_id}"

    def _abs(self, rel: str) -> Path | None:
        return Path(settings.MEDIA_ROOT) / rel if rel else None

    @property
    def image_file(self) -> Path:
        return self._abs(self.image_path)

    @property
    def label_file(self) -> Path:
        return self._abs(self.label_path)

    @property
    def preview_file(self) -> Path | None:
        return self._abs(self.preview_path)
