"""Reading the MSD layout and plain (image, label) pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasengine.data import DataError, dataset_from_pairs, load_dataset
from nasengine.data.dataset import normalise_labels


def _arrays(shape=(5, 4, 3), channels=None):
    rng = np.random.default_rng(0)
    image = rng.normal(size=shape + ((channels,) if channels else ())).astype(np.float32)
    label = (rng.random(shape) > 0.7).astype(np.uint8)
    return image, label


def test_load_msd(make_msd):
    image, label = _arrays()
    root = make_msd([("liver_001", image, label, np.eye(4)), ("liver_002", image, label, np.eye(4))])
    spec = load_dataset(root)
    assert spec.name == "TestSet"
    assert spec.labels == {0: "background", 1: "organ", 2: "lesion"}
    assert spec.channel_names == ["MR"] and spec.modality == "MR"
    assert [c.case_id for c in spec.cases] == ["liver_001", "liver_002"]
    assert spec.cases[0].image == (root / "imagesTr" / "liver_001.nii.gz").resolve()
    assert spec.cases[1].label == (root / "labelsTr" / "liver_002.nii.gz").resolve()
    assert spec.n_classes == 3 and spec.n_channels == 1
    json.dumps(spec.to_dict())


def test_load_msd_multichannel(make_msd):
    image, label = _arrays(channels=4)
    root = make_msd([("brats_001", image, label, np.eye(4))], channels={"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"})
    spec = load_dataset(root)
    assert spec.channel_names == ["FLAIR", "T1w", "t1gd", "T2w"]
    assert spec.modality == "multi-channel"


def test_nnunet_v2_style_labels_and_channel_names(make_msd):
    image, label = _arrays()
    root = make_msd([("ct_001", image, label, np.eye(4))], labels={"background": 0, "tumour": 1})
    description = json.loads((root / "dataset.json").read_text())
    del description["modality"]
    description["channel_names"] = {"0": "CT"}
    (root / "dataset.json").write_text(json.dumps(description))
    spec = load_dataset(root)
    assert spec.labels == {0: "background", 1: "tumour"}
    assert spec.modality == "CT"


def test_missing_dataset_json(tmp_path):
    with pytest.raises(DataError, match=r"^dataset\.json: not found"):
        load_dataset(tmp_path)


def test_invalid_json(make_msd):
    image, label = _arrays()
    root = make_msd([("a", image, label, np.eye(4))])
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"^dataset\.json: is not valid JSON"):
        load_dataset(root)


def test_listed_file_missing(make_msd):
    image, label = _arrays()
    root = make_msd([("a", image, label, np.eye(4))])
    (root / "labelsTr" / "a.nii.gz").unlink()
    with pytest.raises(DataError, match=r"^a\.nii\.gz: label listed in dataset\.json was not found"):
        load_dataset(root)


def test_path_outside_dataset_rejected(make_msd, tmp_path):
    image, label = _arrays()
    root = make_msd([("a", image, label, np.eye(4))])
    (tmp_path / "secret.nii.gz").write_bytes(b"x")
    description = json.loads((root / "dataset.json").read_text())
    description["training"][0]["image"] = "../secret.nii.gz"
    (root / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="points outside the dataset folder"):
        load_dataset(root)


def test_duplicate_case(make_msd):
    image, label = _arrays()
    root = make_msd([("a", image, label, np.eye(4))])
    description = json.loads((root / "dataset.json").read_text())
    description["training"].append(description["training"][0])
    (root / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="listed twice"):
        load_dataset(root)


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"1": "organ"}, "label 0 \\(background\\) is not declared"),
        ({"0": "background"}, "only the background label"),
        ({"0": "background", "one": "organ"}, "not understood"),
        ([], "non-empty mapping"),
    ],
)
def test_bad_label_declarations(labels, message):
    with pytest.raises(DataError, match=message):
        normalise_labels(labels, "dataset.json")


def test_pairs(tmp_path, write_nifti_file):
    image, label = _arrays()
    pairs = []
    for name in ("p1", "p2"):
        pairs.append(
            (write_nifti_file(tmp_path / f"{name}.nii.gz", image), write_nifti_file(tmp_path / f"{name}_seg.nii", label))
        )
    spec = dataset_from_pairs(pairs, {"0": "background", "1": "organ"}, ["CT"], name="uploads")
    assert [c.case_id for c in spec.cases] == ["p1", "p2"]
    assert spec.cases[0].label.name == "p1_seg.nii"
    assert spec.labels == {0: "background", 1: "organ"} and spec.modality == "CT"
    with pytest.raises(DataError, match=r"^nope\.nii\.gz: label file not found"):
        dataset_from_pairs([(pairs[0][0], tmp_path / "nope.nii.gz")], {0: "bg", 1: "x"}, "CT")
    with pytest.raises(DataError, match="same case name"):
        dataset_from_pairs([pairs[0], pairs[0]], {0: "bg", 1: "x"}, "CT")
