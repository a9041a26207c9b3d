"""Attention maps of a model from a DAST genotype: averaged over tokens and resized to the
input grid (paper sec. 4.4), and written as NIfTI in the input's geometry."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from nasengine.inference.bundle import write_bundle
from nasengine.methods.dast import METHOD, TRANSFORMER
from nasengine.methods.dast.attention import attention_maps, map_file_name, transformer_sites, write_attention_maps

#: an input with an odd shape and an oblique, flipped, shifted affine
SHAPE = (30, 34, 27)
AFFINE = np.array([[0.0, -1.2, 0.0, 40.0],
                   [0.9, 0.0, 0.0, -12.5],
                   [0.0, 0.0, 1.5, 7.0],
                   [0.0, 0.0, 0.0, 1.0]])


def decoded(op_index: int, seed: int = 0) -> dict:
    """A tiny DAST genotype whose selected edges all prefer op ``op_index``."""
    torch.manual_seed(seed)
    net = METHOD.build_supernet(METHOD.make_config("tiny"), 1, 3)
    with torch.no_grad():
        net.op_logits[..., op_index] = 5.0
    return net.decode()


def bundle_of(genotype: dict, tiny_search, path) -> object:
    out, _, _ = tiny_search
    torch.manual_seed(0)
    network = METHOD.build_network(genotype)
    plan = json.loads((out / "plan.json").read_text())
    return write_bundle(path, network=network, genotype=genotype, plan=plan,
                        labels={0: "background", 1: "organ", 2: "lesion"}, channel_names=["CT"])


def test_maps_are_averaged_resized_and_leave_the_segmentation_unchanged():
    genotype = decoded(2)
    sites = transformer_sites(genotype)
    assert sites and all(s.id == f"{s.source}->{s.target}" for s in sites)
    torch.manual_seed(0)
    network = METHOD.build_network(genotype).eval()
    x = torch.randn(2, 1, 32, 32, 32)
    logits, maps = attention_maps(network, genotype, x)
    with torch.no_grad():
        assert torch.allclose(logits, network(x))
    assert list(maps) == [s.id for s in sites]
    for volume in maps.values():
        assert volume.shape == (2, 32, 32, 32)
        # mean_T(A) * G has mean 1 on the grid; the trilinear resize keeps it close
        assert float(volume.mean()) == pytest.approx(1.0, rel=0.05)
        assert float(volume.min()) >= 0
    assert all(not op.keep_attention for op in network.modules() if hasattr(op, "keep_attention"))


def test_a_chosen_transformer_op_and_an_unknown_one():
    genotype = decoded(2)
    sites = transformer_sites(genotype)
    network = METHOD.build_network(genotype).eval()
    _, maps = attention_maps(network, genotype, torch.randn(1, 1, 32, 32, 32), which=[sites[-1].id])
    assert list(maps) == [sites[-1].id]
    with pytest.raises(KeyError, match="no transformer op at n9_9->n9_8"):
        attention_maps(network, genotype, torch.randn(1, 1, 32, 32, 32), which=["n9_9->n9_8"])


def test_attention_nifti_has_the_input_shape_and_affine(tiny_search, tmp_path):
    genotype = decoded(2)
    bundle = bundle_of(genotype, tiny_search, tmp_path / "model")
    image = tmp_path / "oblique.nii.gz"
    data = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    nib.save(nib.Nifti1Image(data, AFFINE), str(image))
    written = write_attention_maps(bundle, image, tmp_path / "maps", device="cpu")
    assert [w["id"] for w in written] == [s.id for s in transformer_sites(genotype)]
    for entry in written:
        assert entry["file"] == map_file_name(entry["id"])
        out = nib.load(str(tmp_path / "maps" / entry["file"]))
        assert out.shape == SHAPE
        assert np.allclose(out.affine, AFFINE)
        assert out.get_data_dtype() == np.float32
        volume = np.asarray(out.dataobj)
        assert np.isfinite(volume).all() and volume.min() >= 0 and volume.max() > volume.min()
        assert entry["max"] == pytest.approx(float(volume.max()), rel=1e-5)


def test_nothing_is_computed_for_a_model_without_transformer_ops(tiny_search, tmp_path):
    genotype = decoded(1)  # every selected edge a conv
    assert not any(e["op"] == TRANSFORMER for e in genotype["edges"])
    bundle = bundle_of(genotype, tiny_search, tmp_path / "model")
    (bundle / "weights.pt").write_bytes(b"never read")  # loading the network would fail
    written = write_attention_maps(bundle, tmp_path / "absent.nii.gz", tmp_path / "maps")
    assert written == [] and not (tmp_path / "maps").exists()


def test_the_engine_entry_point_finds_the_maps_through_the_method(tiny_search, tmp_path):
    """``nasengine.inference.explain`` (method-neutral) reaches DAST's hook; a DiNTS bundle and
    a DAST bundle without transformer ops get nothing, with nothing computed."""
    import shutil
    from pathlib import Path

    from nasengine.inference import explain

    with_transformers = bundle_of(decoded(2), tiny_search, tmp_path / "dast")
    assert [s["id"] for s in explain.attention_sites(with_transformers)] == \
        [s.id for s in transformer_sites(decoded(2))]
    image = tmp_path / "oblique.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32), AFFINE), str(image))
    first = explain.attention_sites(with_transformers)[0]["id"]
    written = explain.write_attention_maps(with_transformers, image, tmp_path / "maps", which=[first], device="cpu")
    assert [w["id"] for w in written] == [first]
    assert nib.load(str(tmp_path / "maps" / written[0]["file"])).shape == SHAPE

    dints = tmp_path / "dints"
    shutil.copytree(with_transformers, dints)
    lattice = Path(__file__).parents[3] / "fixtures" / "genotypes" / "lattice.json"
    shutil.copyfile(lattice, dints / "genotype.json")
    info = json.loads((dints / "bundle.json").read_text())
    (dints / "bundle.json").write_text(json.dumps({**info, "method": "dints"}))
    assert explain.attention_sites(dints) == []
    assert explain.write_attention_maps(dints, tmp_path / "absent.nii.gz", tmp_path / "none") == []
    assert not (tmp_path / "none").exists()
