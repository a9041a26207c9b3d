"""Helpers for the prediction tests (web and browser): a real model bundle made by the engine,
registered as a model, and input volumes.

``engine_bundle(tmp_path_factory)`` builds the bundle once per test session (the synthetic demo
data, a DiNTS search of a few steps, a retraining of a few steps: about 10 s on 2 CPU cores) and
caches it in the session's base temporary folder, so every module that needs it shares it.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

DEMO_SHAPE = (32, 32, 24)
LABELS = {"0": "background", "1": "organ", "2": "lesion"}


def engine_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """(bundle folder, demo data folder), built with the real engine once per session."""
    from nasengine import api

    root = tmp_path_factory.getbasetemp() / "prediction-engine"
    bundle, demo = root / "bundle", root / "demo"
    if (bundle / "bundle.json").is_file():
        return bundle, demo
    shutil.rmtree(root, ignore_errors=True)
    api.make_demo_data(demo, n_cases=3, shape=DEMO_SHAPE, n_test=1)
    search = root / "search"
    api.search("dints", demo, search, "tiny", {
        "warmup_steps": 1, "weight_only_steps": 1, "search_steps": 2, "lr_milestones": [1, 2],
        "snapshot_every": 1, "validate_every": 0, "checkpoint_every": 0,
    })
    api.retrain(search / "genotype.json", demo, bundle, "tiny",
                {"steps": 2, "warmup_steps": 1, "lr_milestones": [1], "export": False})
    shutil.rmtree(bundle / "checkpoints", ignore_errors=True)
    return bundle, demo


def dast_engine_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """(bundle folder, demo data folder) of a real DAST model whose selected edges are all
    transformers, retrained for two steps; built once per session."""
    import torch

    from nasengine import api
    from nasengine.methods.dast import METHOD

    root = tmp_path_factory.getbasetemp() / "prediction-dast"
    bundle, demo = root / "bundle", root / "demo"
    if (bundle / "bundle.json").is_file():
        return bundle, demo
    shutil.rmtree(root, ignore_errors=True)
    api.make_demo_data(demo, n_cases=3, shape=DEMO_SHAPE, n_test=1)
    torch.manual_seed(0)
    supernet = METHOD.build_supernet(METHOD.make_config("tiny"), 1, 3)
    with torch.no_grad():
        supernet.op_logits[..., 2] = 5.0  # op 2 is the transformer: every selected edge one
    api.retrain(supernet.decode(), demo, bundle, "tiny",
                {"steps": 2, "warmup_steps": 1, "lr_milestones": [1], "export": False})
    shutil.rmtree(bundle / "checkpoints", ignore_errors=True)
    return bundle, demo

def make_engine_model(project, bundle_src: Path, *, dataset=None, name: str = "Demo model"):
    """A succeeded retraining run whose output folder is a copy of ``bundle_src``, registered
    as a model with the real ``register_model``."""
    from webapp.datasets.models import Dataset
    from webapp.mlmodels.services import register_model
    from webapp.runs.models import Run

    if dataset is None:
        dataset = Dataset.objects.create(project=project, name="Demo", source="folder", labels=LABELS,
                                         channel_names=["image"], status=Dataset.Status.READY)
    run = Run.objects.create(project=project, dataset=dataset, kind=Run.Kind.RETRAIN, method="dints",
                             preset="tiny", name=name, gpu_budget_bytes=8 << 30)
    run.transition(Run.Status.RUNNING)
    run.transition(Run.Status.SUCCEEDED)
    shutil.copytree(bundle_src, run.bundle_dir, dirs_exist_ok=True)
    return register_model(run, name=name)


def write_volume(path: Path, data: np.ndarray, affine: np.ndarray, *, identifying: bool = True) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    if identifying:
        img.header["descrip"] = b"Doe^Jane 1970-01-01"
        img.header["aux_file"] = b"mrn-12345"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def oblique_affine(spacing=(1.1, 0.9, 1.6), degrees: float = 12.0, origin=(-14.0, 9.0, -20.0)) -> np.ndarray:
    """A voxel-to-world matrix with a rotation about z: not the training data's geometry."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def input_volume(demo: Path, path: Path, *, crop=(30, 28, 22), affine=None) -> Path:
    """A demo test image cropped to another shape and given an oblique affine, with patient
    text in its header."""
    source = sorted((demo / "imagesTs").glob("*.nii*"))[0]
    data = np.asarray(nib.load(str(source)).dataobj, dtype=np.float32)
    data = np.ascontiguousarray(data[: crop[0], : crop[1], : crop[2]])
    return write_volume(path, data, oblique_affine() if affine is None else affine)


def make_prediction(model, *, status: str = "succeeded"):
    """A prediction row with small input and label files, without running a job (pages,
    permissions)."""
    from django.conf import settings

    from webapp.predictions.models import Prediction

    prediction = Prediction(project=model.project, model=model, input_name="scan.nii.gz")
    prediction.input_path = str((prediction.root / Prediction.INPUT_NAME).relative_to(settings.MEDIA_ROOT))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    write_volume(prediction.input_file, np.zeros((8, 8, 8), np.float32), affine, identifying=False)
    prediction.shape, prediction.spacing = [8, 8, 8], [2.0, 2.0, 2.0]
    prediction.save()
    if status != "queued":
        prediction.transition(Prediction.Status.RUNNING)
    if status == "succeeded":
        label = np.zeros((8, 8, 8), np.uint8)
        label[2:4, 2:4, 2:4] = 1
        prediction.output_path = str((prediction.root / Prediction.OUTPUT_NAME).relative_to(settings.MEDIA_ROOT))
        write_volume(prediction.output_file, label, affine, identifying=False)
        prediction.voxel_volume_ml = 0.008
        prediction.volumes = [{"value": 1, "name": "a", "voxels": 8, "ml": 0.064}]
        attention = prediction.attention_dir / "attention_n0_1_n1_1.nii.gz"  # as a DAST model writes
        write_volume(attention, np.ones((8, 8, 8), np.float32), affine, identifying=False)
        prediction.attention_maps = [{"id": "n0_1->n1_1", "source": "n0_1", "target": "n1_1", "layer": 1,
                                      "level": 1, "file": attention.name, "min": 1.0, "max": 1.0, "mean": 1.0}]
        prediction.save()
        prediction.transition(Prediction.Status.SUCCEEDED)
    elif status == "failed":
        prediction.transition(Prediction.Status.FAILED, error="broken")
    return prediction
