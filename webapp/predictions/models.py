"""Predictions: one input volume segmented by a registered model."""
import uuid
from pathlib import Path

from django.conf import settings
from django.db import models

from webapp.common.jobs import Job, status_field
from webapp.common.status import IllegalTransition  # noqa: F401 (re-exported)


class Prediction(Job):
    """One volume segmented by a :class:`~webapp.mlmodels.models.TrainedModel`.

    Files live under ``MEDIA_ROOT/predictions/<storage_key>/``: ``input.nii.gz`` (the uploaded
    volume or a copy of a dataset case, identifying header text cleared) and, once it succeeded,
    ``label.nii.gz`` (uint8 label map in the input's shape and affine) and, for a model with
    transformer ops (DAST), ``attention/attention_<source>_<target>.nii.gz`` (float32 attention
    maps in the input's geometry, listed in ``attention_maps``). The status changes only through
    :meth:`transition`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    #: queued -> running -> succeeded | failed; a queued prediction that cannot be queued (or whose
    #: job is lost) may fail directly. succeeded and failed are final.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED}),
        Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED}),
        Status.SUCCEEDED: frozenset(),
        Status.FAILED: frozenset(),
    }

    INPUT_NAME = "input.nii.gz"
    OUTPUT_NAME = "label.nii.gz"
    ATTENTION_DIR = "attention"

    model = models.ForeignKey("mlmodels.TrainedModel", on_delete=models.PROTECT, related_name="predictions")
    #: Set when the input was picked from a dataset's cases rather than uploaded.
    source_case = models.ForeignKey(
        "datasets.Case", null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    #: What the researcher knows the input by: the uploaded file's name or "<dataset> / <case id>".
    input_name = models.CharField(max_length=255)
    #: The researcher's name for the prediction; blank: :attr:`display_name` says what it is.
    name = models.CharField(max_length=200, blank=True)
    storage_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    #: Paths relative to MEDIA_ROOT.
    input_path = models.CharField(max_length=500)
    output_path = models.CharField(max_length=500, blank=True)
    shape = models.JSONField(default=list, blank=True)
    spacing = models.JSONField(default=list, blank=True)
    n_channels = models.PositiveSmallIntegerField(default=1)
    input_bytes = models.BigIntegerField(default=0)
    #: Volume of one voxel in millilitres (product of the header's zooms / 1000).
    voxel_volume_ml = models.FloatField(null=True, blank=True)
    #: Per class of the model: [{"value": 1, "name": "liver", "voxels": 1234, "ml": 12.3}, ...].
    volumes = models.JSONField(default=list, blank=True)
    #: The reference label's volumes when the input is a dataset case with a label, in the rows of
    #: ``volumes`` (computed once, on first view): [{"value", "name", "voxels", "ml"}, ...].
    reference_volumes = models.JSONField(default=list, blank=True)
    #: Transformer ops whose attention maps were asked for (site ids; empty: every one).
    attention_request = models.JSONField(default=list, blank=True)
    #: Attention maps written: [{"id", "source", "target", "layer", "level", "file", "min",
    #: "max", "mean"}, ...] (empty for models without transformer ops).
    attention_maps = models.JSONField(default=list, blank=True)
    status = status_field(Status.choices)
    progress = models.CharField(max_length=300, blank=True)

    # -- inference settings, passed by the worker to ``nasengine.api.predict`` -------------------
    class Postprocess(models.TextChoices):
        AUTO = "auto", "Decided on the validation cases"
        NONE = "none", "None"
        LCC = "lcc", "Largest connected component of every class"

    #: Share of each Gaussian sliding window that overlaps the next, 0 <= overlap < 1.
    overlap = models.FloatField(default=0.5)
    #: Mirroring test-time augmentation (the volume and its 7 flipped copies, averaged).
    mirror = models.BooleanField(default=False)
    #: Largest-connected-component post-processing: the model's decision, never, or always.
    postprocess = models.CharField(max_length=8, choices=Postprocess.choices, default=Postprocess.AUTO)
    #: Segmented with the model's k-fold ensemble (``model.fold_set.ensemble_path``) rather
    #: than the model alone.
    use_ensemble = models.BooleanField(default=False)

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The given name, else what it is: "case_003 (Liver CT) segmented by <model>"."""
        return self.name or f"{self.input_name} segmented by {self.model.name}"

    def rename(self, name: str) -> None:
        """Set the name (blank: back to the descriptive default); ValidationError when too long."""
        from django.core.exceptions import ValidationError

        name = (name or "").strip()
        if len(name) > 200:
            raise ValidationError({"name": "Give the prediction a name under 200 characters."})
        self.name = name
        self.save(update_fields=["name"])

    # -- the one place where status changes: StatusMachine.transition() (see Job) -------------
    STATUS_NOUN = "prediction"

    # -- files --------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "predictions" / str(self.storage_key)

    @property
    def input_file(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.input_path

    @property
    def output_file(self) -> Path | None:
        return Path(settings.MEDIA_ROOT) / self.output_path if self.output_path else None

    @property
    def attention_dir(self) -> Path:
        return self.root / self.ATTENTION_DIR

    @property
    def settings_text(self) -> list[str]:
        """The inference settings in plain words, one phrase each (the prediction page)."""
        overlap = f"sliding windows overlapping by {self.overlap:.0%}"
        mirror = ("mirroring test-time augmentation (8 flipped copies averaged)" if self.mirror
                  else "no mirroring test-time augmentation")
        postprocess = {
            self.Postprocess.AUTO: "largest-component clean-up as decided on the model's validation cases",
            self.Postprocess.NONE: "no largest-component clean-up",
            self.Postprocess.LCC: "only the largest connected component of every class kept",
        }.get(self.postprocess, self.postprocess)
        source = ("the model's k-fold ensemble (its fold models' outputs averaged)" if self.use_ensemble
                  else "the model alone")
        return [source, overlap, mirror, postprocess]

    @property
    def total_ml(self) -> float:
        return sum(v.get("ml") or 0.0 for v in self.volumes or [])
