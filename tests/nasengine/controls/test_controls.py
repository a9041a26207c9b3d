"""The hand-designed control (MONAI DynUNet as nnU-Net configures it) goes through retrain,
the model bundle (with its test split and fold) and prediction, end to end at tiny size."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from nasengine import api
from nasengine.config import ConfigError
from nasengine.controls import handdesigned_architecture, nnunet_kernels_and_strides
from nasengine.genotype import validate
from nasengine.inference.bundle import load_network, network_from_genotype, read_bundle


def test_nnunet_configuration_follows_spacing_and_patch():
    kernels, strides = nnunet_kernels_and_strides([0.9, 0.9, 2.5], [64, 64, 32])
    # thick slices: no pooling and 1-voxel kernels along z until x/y are as coarse
    assert kernels[0] == [3, 3, 1] and strides[1] == [2, 2, 1]
    assert kernels[1] == [3, 3, 3] and strides[2] == [2, 2, 2]
    # feature maps stop at 4 voxels: 64 -> 4 in x (4 poolings), 32 -> 4 in z (3 poolings)
    assert [int(np.prod([s[a] for s in strides])) for a in range(3)] == [16, 16, 8]
    kernels, strides = nnunet_kernels_and_strides([1, 1, 1], [32, 32, 32])
    assert strides == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]


def test_handdesigned_genotype_is_a_dynunet_with_its_true_figures():
    plan = {"target_spacing": [1.0, 1.0, 1.5], "patch_size": [32, 32, 32],
            "channel_names": ["MR"], "label_ids": [0, 1, 2]}
    small = handdesigned_architecture(plan, target_parameters=60_000)
    large = handdesigned_architecture(plan, target_parameters=2_000_000)
    assert validate(small) == small and small["method"] == "handdesigned"
    network = network_from_genotype(small)
    assert type(network).__name__ == "DynUNet"
    assert small["derived"]["parameters"] == sum(p.numel() for p in network.parameters())
    assert small["derived"]["flops"] > 0
    assert large["derived"]["parameters"] > 4 * small["derived"]["parameters"]
    assert abs(small["derived"]["parameters"] - 60_000) < 60_000  # sized to the target
    with torch.no_grad():
        assert network(torch.zeros(1, 1, 32, 32, 32)).shape == (1, 3, 32, 32, 32)


def test_derive_figures_of_a_network_plan_are_the_dynunets_own():
    """The plan's nodes only draw the network: derive_figures must count the DynUNet itself,
    and its memory is the bytes autograd saves in one forward at that patch."""
    from nasengine.genotype import derive_figures

    plan = {"target_spacing": [1.0, 1.0, 1.0], "patch_size": [32, 32, 32],
            "channel_names": ["MR"], "label_ids": [0, 1]}
    genotype = handdesigned_architecture(plan, target_parameters=60_000)
    network = network_from_genotype(genotype)
    figures = derive_figures(genotype, [32, 32, 32])
    assert figures["parameters"] == sum(p.numel() for p in network.parameters())
    assert figures["flops"] == genotype["derived"]["flops"]
    saved: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        network(torch.zeros(1, 1, 32, 32, 32))
    assert 0 < figures["memory_bytes"] <= 4 * sum(saved)  # unique storages of float32 tensors
    assert derive_figures(genotype, [64, 64, 64])["memory_bytes"] > 4 * figures["memory_bytes"]


def test_control_architecture_rejects_unknown_kinds(tmp_path):
    data = api.make_demo_data(tmp_path / "d", n_cases=2, shape=(24, 24, 16))
    with pytest.raises(ConfigError, match="kind"):
        api.control_architecture("clever", data)
    with pytest.raises(ConfigError, match="method"):
        api.control_architecture("random", data)


def test_handdesigned_control_retrains_records_test_split_and_fold_and_predicts(tmp_path):
    data = api.make_demo_data(tmp_path / "data", n_cases=5, shape=(24, 24, 16), n_test=1)
    genotype = api.control_architecture("handdesigned", data, patch_size=(16, 16, 16),
                                        target_parameters=20_000)
    model = api.retrain(genotype, data, tmp_path / "model", preset="tiny",
                        overrides={"patch_size": [16, 16, 16], "export": False,
                                   "test_fraction": 0.2, "num_folds": 2, "fold": 1})
    bundle = read_bundle(model)
    info = json.loads((model / "bundle.json").read_text())
    assert info["method"] == "handdesigned"
    assert info["fold"] == {"fold": 1, "num_folds": 2}
    test_ids = [c["id"] for c in info["test_cases"]]
    assert len(test_ids) == 1
    assert (data / info["test_cases"][0]["image"]).is_file()
    assert (data / info["test_cases"][0]["label"]).is_file()
    source = info["source"]
    assert not set(test_ids) & (set(source["train_cases"]) | set(source["val_cases"]))
    assert len(source["train_cases"]) + len(source["val_cases"]) == 4
    assert source["retrain"]["recipe"] == "nnunet"
    assert type(load_network(bundle)).__name__ == "DynUNet"
    image = data / info["test_cases"][0]["image"]
    out = api.predict(model, image, tmp_path / "pred.nii.gz")
    predicted = nib.load(str(out))
    assert predicted.shape == nib.load(str(image)).shape
    assert set(np.unique(np.asarray(predicted.dataobj))) <= {0, 1, 2}
