"""The network built from every method's searched genotype trains (forward and backward on
CPU) and exports with torch.export and ONNX, the exports computing what the network does."""
from __future__ import annotations

import onnxruntime
import pytest
import torch
from torch import nn

from nasengine.genotype import derive_figures
from nasengine.inference.export import export_onnx, export_torch
from nasengine.methods import get_method

BATCH = 2
#: Exported graphs may reorder float sums; anything beyond rounding is a real difference.
ATOL, RTOL = 1e-4, 1e-4


def built_network(method_name: str, contract_runs) -> tuple[nn.Module, torch.Tensor]:
    """The network of the tiny search's genotype (seeded) and an input batch
    ``[BATCH, in_channels, *search patch]``."""
    method = get_method(method_name)
    genotype = contract_runs.search(method_name).genotype
    patch = tuple(method.data_settings(method.make_config("tiny")).patch_size)
    divisor = method.patch_divisor(genotype)
    assert all(s % divisor == 0 for s in patch), f"patch {patch} vs divisor {divisor}"
    torch.manual_seed(0)
    network = method.build_network(genotype)
    x = torch.randn(BATCH, genotype["in_channels"], *patch)
    return network, x


def test_network_runs_forward_and_backward(method_name, contract_runs):
    network, x = built_network(method_name, contract_runs)
    genotype = contract_runs.search(method_name).genotype
    assert isinstance(network, nn.Module)
    network.train()
    logits = network(x)
    assert logits.shape == (BATCH, genotype["out_channels"], *x.shape[2:])
    target = torch.randint(0, genotype["out_channels"], (BATCH, *x.shape[2:]))
    nn.functional.cross_entropy(logits, target).backward()
    trainable = [(n, p) for n, p in network.named_parameters() if p.requires_grad]
    assert trainable, "the network has no trainable parameters"
    no_grad = [n for n, p in trainable if p.grad is None]
    assert not no_grad, f"parameters the loss does not reach: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


def test_derived_parameter_count_is_the_built_networks(method_name, contract_runs):
    """The figures shown for an architecture (``derive_figures``) count what is built."""
    network, x = built_network(method_name, contract_runs)
    genotype = contract_runs.search(method_name).genotype
    figures = derive_figures(genotype, list(x.shape[2:]))
    assert figures["parameters"] == sum(p.numel() for p in network.parameters())


def test_torch_export_matches_the_network(method_name, contract_runs, tmp_path):
    network, x = built_network(method_name, contract_runs)
    network.eval()
    with torch.no_grad():
        expected = network(x)
        info = export_torch(network, x, tmp_path / "network.pt2")
        program = torch.export.load(str(tmp_path / "network.pt2"))
        got = program.module()(x)
    assert info["file"] == "network.pt2"
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def onnx_session(method_name: str, contract_runs) -> onnxruntime.InferenceSession:
    """The network exported to ONNX once per method (at batch ``BATCH``), in a session."""
    def export() -> onnxruntime.InferenceSession:
        network, x = built_network(method_name, contract_runs)
        path = contract_runs.root / method_name / "network.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            export_onnx(network.eval(), x, path)
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return contract_runs.memo((method_name, "onnx"), export)


@pytest.mark.parametrize("batch", [BATCH, 1, 3])
def test_onnx_export_matches_the_network(method_name, contract_runs, batch):
    """Also at other batch sizes: the bundle's ONNX file declares a dynamic batch."""
    network, x = built_network(method_name, contract_runs)
    x = torch.randn(batch, *x.shape[1:])
    with torch.no_grad():
        expected = network.eval()(x)
    (got,) = onnx_session(method_name, contract_runs).run(["logits"], {"image": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=ATOL, rtol=RTOL)
