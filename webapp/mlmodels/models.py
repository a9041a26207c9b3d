"""Registered models: the bundle a successful retraining run wrote."""
from pathlib import Path

from django.conf import settings
from django.db import models

from webapp.datasets.models import Dataset
from webapp.projects.models import Project


class TrainedModel(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="trained_models")
    name = models.CharField(max_length=200)
    #: The retraining run that produced it.
    run = models.OneToOneField("runs.Run", on_delete=models.PROTECT, related_name="trained_model")
    #: SET_NULL: the training data may be deleted; the model stays usable.
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_models")
    method = models.CharField(max_length=32, blank=True)
    #: The bundle directory, relative to MEDIA_ROOT (bundle.json, genotype.json, plan.json, weights.pt, network.pt2).
    bundle_dir = models.CharField(max_length=500)
    #: {"0": "background", "1": "liver", ...}
    label_names = models.JSONField(default=dict)
    #: {"liver": 0.91, ...} per-class validation Dice (None where a class was absent).
    val_dice = models.JSONField(default=dict)
    mean_dice = models.FloatField(null=True, blank=True)
    channel_names = models.JSONField(default=list)
    exports = models.JSONField(default=dict, blank=True)
    #: The network's size at its training patch: {"parameters", "flops", "memory_bytes",
    #: "patch_size"} (nasengine.genotype.derive_figures), filled when the model is registered.
    figures = models.JSONField(default=dict, blank=True)
    #: Per-class colours the researcher chose: {"1": "#e69f00", ...}; classes not listed keep
    #: the default palette (webapp.common.colours).
    label_colours = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def bundle_path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.bundle_dir

    @property
    def network_file(self) -> Path | None:
        """The exported network (torch.export ``network.pt2``, else ONNX), if export worked."""
        for name in ("network.pt2", "network.onnx"):
            path = self.bundle_path / name
            if path.is_file():
                return path
        return None
