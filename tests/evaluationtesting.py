"""Helpers for the evaluation web tests: a ready dataset copied from the demo data, with
labelled test cases (one with an oblique, anisotropic geometry)."""
from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
from predictiontesting import LABELS, oblique_affine, write_volume


def demo_dataset(project, demo, *, labelled_test: bool):
    """A ready dataset whose MSD folder is a copy of the demo data; with ``labelled_test`` its
    test image gets a label in labelsTs/ and a second test case has an oblique geometry."""
    from webapp.datasets.models import Dataset

    dataset = Dataset.objects.create(project=project, name="Demo", source="folder", labels=LABELS,
                                     channel_names=["MR"], status=Dataset.Status.READY)
    shutil.copytree(demo, dataset.msd_dir)
    if labelled_test:
        image = sorted((dataset.msd_dir / "imagesTs").glob("*.nii.gz"))[0]
        img = nib.load(str(image))
        data = np.asarray(img.dataobj, dtype=np.float32)
        label = np.zeros(data.shape, np.uint8)
        label[data > np.percentile(data, 70)] = 1
        label[data > np.percentile(data, 95)] = 2
        write_volume(dataset.msd_dir / "labelsTs" / image.name, label, img.affine, identifying=False)
        odd = oblique_affine(spacing=(0.8, 1.3, 2.2))
        write_volume(dataset.msd_dir / "imagesTs" / "oblique_case.nii.gz", data[:30, :26, :20], odd, identifying=False)
        write_volume(dataset.msd_dir / "labelsTs" / "oblique_case.nii.gz", label[:30, :26, :20], odd, identifying=False)
    return dataset


TEST_CASES = [{"id": "demo_test_000", "image": "imagesTs/demo_test_000.nii.gz", "label": "labelsTs/demo_test_000.nii.gz"},
              {"id": "oblique_case", "image": "imagesTs/oblique_case.nii.gz", "label": "labelsTs/oblique_case.nii.gz"}]


def bundle_with_test_split(src, dst, cases=TEST_CASES):
    """A copy of the bundle ``src`` whose recorded test split is ``cases`` (what a retraining on
    the labelled dataset records), so the evaluation knows which cases the model never saw."""
    from nasengine.inference.bundle import read_bundle, update_bundle_info

    shutil.copytree(src, dst, dirs_exist_ok=True)
    source = dict(read_bundle(dst).info.get("source") or {})
    source["test_cases"] = list(cases)
    update_bundle_info(dst, source=source, test_cases=list(cases))
    return dst
