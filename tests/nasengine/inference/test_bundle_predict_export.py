"""Model bundle round trip, predict_volume geometry on an oblique affine, export."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from engine_fakes import tiny_genotype  # noqa: E402

from nasengine.genotype import build_network  # noqa: E402
from nasengine.inference import predict as predict_mod  # noqa: E402
from nasengine.inference.bundle import BundleError, load_network, read_bundle, write_bundle  # noqa: E402
from nasengine.inference.export import export_network  # noqa: E402

LABELS = {0: "background", 1: "organ", 2: "lesion"}


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    from nasengine.data import compute_fingerprint, load_dataset, make_demo_data, make_plan

    root = make_demo_data(tmp_path_factory.mktemp("demo"), n_cases=2, shape=(24, 20, 16),
                          n_test=0)
    return make_plan(compute_fingerprint(load_dataset(root)), divisor=2,
                     patch_size=(16, 16, 16))


def _bundle(path, plan, network=None):
    torch.manual_seed(0)
    network = network or build_network(tiny_genotype())
    return write_bundle(path, network=network, genotype=tiny_genotype(), plan=plan,
                        labels=LABELS, channel_names=["MR"], dice={"organ": 0.5, "lesion": None},
                        mean_dice=0.5, source={"dataset": "demo"}), network


def _oblique_affine():
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.9, -1.1, 1.7])
    affine[:3, 3] = [12.5, -40.0, 7.25]
    return affine


def test_bundle_round_trip(tmp_path, plan):
    out, network = _bundle(tmp_path / "m", plan)
    info = json.loads((out / "bundle.json").read_text())
    assert info["format"] == "voxelsearch-model" and info["version"] == 1
    assert info["method"] == "fake" and info["labels"] == {"0": "background", "1": "organ",
                                                           "2": "lesion"}
    assert info["validation"] == {"dice": {"organ": 0.5, "lesion": None}, "mean_dice": 0.5}
    assert info["source"] == {"dataset": "demo"} and info["channel_names"] == ["MR"]
    torch.load(out / "weights.pt", weights_only=True)
    bundle = read_bundle(out)
    assert bundle.plan_object().patch_size == (16, 16, 16)
    loaded = load_network(bundle)
    x = torch.randn(2, 1, 16, 16, 16)
    assert torch.equal(loaded(x), network.eval()(x))


def test_bad_bundles_give_one_line_errors(tmp_path, plan):
    with pytest.raises(BundleError, match="does not exist"):
        read_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="bundle.json is missing"):
        read_bundle(tmp_path / "empty")
    out, _ = _bundle(tmp_path / "m", plan)
    info = json.loads((out / "bundle.json").read_text())
    (out / "bundle.json").write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(BundleError, match="version 99 is not supported"):
        read_bundle(out)
    (out / "bundle.json").write_text(json.dumps(info))
    torch.save({"bogus": torch.zeros(1)}, out / "weights.pt")
    with pytest.raises(BundleError, match="weights.pt: does not match genotype.json"):
        load_network(out)


def _write_input(path, shape, affine):
    """A bright box in one corner of an oblique, anisotropic volume."""
    data = np.full(shape, 100.0, dtype=np.float32)
    data[: shape[0] // 2, : shape[1] // 2, : shape[2] // 2] = 900.0
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return data


class ThresholdNet(nn.Module):
    """Class 1 where the normalised intensity is positive, else class 0 (never class 2)."""

    def forward(self, x):
        return torch.cat([torch.zeros_like(x), x, torch.full_like(x, -100.0)], dim=1)


def test_predict_preserves_shape_affine_and_geometry(tmp_path, plan, monkeypatch):
    out, _ = _bundle(tmp_path / "m", plan)
    affine = _oblique_affine()
    shape = (23, 19, 13)
    data = _write_input(tmp_path / "in.nii.gz", shape, affine)
    monkeypatch.setattr(predict_mod, "load_network", lambda bundle, device: ThresholdNet())
    result = predict_mod.predict_volume(out, tmp_path / "in.nii.gz", tmp_path / "seg.nii.gz",
                                        sw_batch_size=3)
    seg = nib.load(str(result))
    assert seg.shape == shape
    np.testing.assert_allclose(seg.affine, affine, atol=1e-5)
    assert seg.get_data_dtype() == np.uint8
    pred = np.asarray(seg.dataobj)
    truth = (data > 500).astype(np.uint8)
    dice = 2 * np.sum((pred == 1) & (truth == 1)) / (np.sum(pred == 1) + np.sum(truth == 1))
    assert dice > 0.9, dice  # the box comes back where it was in the input's own grid
    assert set(np.unique(pred)) <= {0, 1}


def test_predict_with_real_network_writes_label_ids(tmp_path, plan):
    network = build_network(tiny_genotype())
    last = [m for m in network.modules() if isinstance(m, nn.Conv3d) and m.bias is not None][-1]
    with torch.no_grad():  # always class 1
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    out, _ = _bundle(tmp_path / "m", plan, network)
    affine = _oblique_affine()
    _write_input(tmp_path / "in.nii", (21, 18, 11), affine)
    result = predict_mod.predict_volume(out, tmp_path / "in.nii", tmp_path / "o" / "seg.nii.gz")
    seg = nib.load(str(result))
    assert seg.shape == (21, 18, 11)
    np.testing.assert_allclose(seg.affine, affine, atol=1e-5)
    assert np.all(np.asarray(seg.dataobj) == 1)


def test_export_torch_and_onnx(tmp_path):
    import onnx
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(0)
    network = build_network(tiny_genotype()).eval()
    result = export_network(network, torch.randn(1, 1, 16, 16, 16), tmp_path)
    assert result["pt2"]["file"] == "network.pt2" and result["pt2"]["dynamic_batch"] is True
    assert result["onnx"]["file"] == "network.onnx"
    x = torch.randn(3, 1, 16, 16, 16)
    program = torch.export.load(str(tmp_path / "network.pt2"))
    with torch.no_grad():
        expected = network(x)
        torch.testing.assert_close(program.module()(x), expected)
    model = onnx.load(str(tmp_path / "network.onnx"))
    onnx.checker.check_model(model)
    got = ReferenceEvaluator(model).run(None, {"image": x[:2].numpy()})[0]
    np.testing.assert_allclose(got, expected[:2].numpy(), atol=1e-4, rtol=1e-4)


def test_export_failure_is_recorded_not_raised(tmp_path):
    class Unexportable(nn.Module):
        def forward(self, x):
            if x.sum().item() > 0:  # data-dependent python control flow
                return x
            return -x

    result = export_network(Unexportable(), torch.ones(1, 1, 8, 8, 8), tmp_path,
                            formats=("pt2",))
    assert "error" in result["pt2"] and "\n" not in result["pt2"]["error"]
    assert not (tmp_path / "network.pt2").exists()
