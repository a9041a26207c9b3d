"""Issue 15: what the DiNTS search step keeps for backward, and that keeping less changes no number.

- every memory mode (rebuild the front, also the P3D middles, per-layer checkpointing) gives
  the same forward bitwise and the same gradients as plain autograd;
- each mode saves less than the one before, and the search estimate follows each of them;
- the rebuilt backward is a correct gradient (gradcheck in float64) and works under autocast;
- a fixed-seed tiny search gives the genotype recorded before the change (bitwise arch logits),
  and an interrupted search resumes exactly.
"""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from dints_testing import synthetic_search_data

from nasengine.events import CallableCancelToken, Cancelled, ListSink, Reporter
from nasengine.lattice.space import get_space
from nasengine.methods.dints import METHOD
from nasengine.methods.dints.memory import estimate_memory, supernet_activation_bytes
from nasengine.methods.dints.model_search import DiNTSSupernet, MixedNode
from nasengine.ops import saved_activation_bytes

MODES = [("none", False), ("front", False), ("front+middle", False), ("front", True), ("front+middle", True)]
RECORDED = Path(__file__).parent / "data" / "tiny_search_before_issue15.json"


def _net(recompute="front", checkpoint_layers=False, channels_last=False, D=3, L=2, f=2, dtype=torch.float32):
    torch.manual_seed(0)
    net = DiNTSSupernet(1, 3, L, D, f, recompute=recompute, checkpoint_layers=checkpoint_layers,
                        channels_last=channels_last).to(dtype)
    with torch.no_grad():  # arch weights off uniform so that every op weight differs
        net.edge_logits.normal_(0, 1)
        net.op_logits.normal_(0, 1)
    return net


def _forward_backward(net, x):
    net.zero_grad(set_to_none=True)
    out = net(x)
    (out.square().mean() + out[:, 1].mean()).backward()
    return out.detach(), {k: p.grad.clone() for k, p in net.named_parameters()}


@pytest.mark.parametrize("channels_last", [False, True])
def test_every_memory_mode_gives_the_numbers_of_plain_autograd(channels_last):
    x = torch.randn(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    ref_out, ref_grads = _forward_backward(_net("none", channels_last=channels_last), x)
    assert all(g.abs().sum() > 0 for g in ref_grads.values())
    for recompute, ckpt in (MODES[1:] if not channels_last else [("front", False)]):
        out, grads = _forward_backward(_net(recompute, ckpt, channels_last=channels_last), x)
        assert torch.equal(out, ref_out), (recompute, ckpt)
        for name, g in grads.items():
            if channels_last:  # gradients summed in another order on a strided layout: rounding
                torch.testing.assert_close(g, ref_grads[name], rtol=1e-5, atol=1e-7, msg=name)
            else:  # same kernels, same accumulation order: bitwise
                assert torch.equal(g, ref_grads[name]), (recompute, ckpt, name)


def test_rebuilt_backward_passes_gradcheck():
    """The node's custom backward against finite differences (float64, gradcheck's fast mode):
    the sources of all three edge kinds (same level, up, down), a resampling parameter, conv
    weights of both P3D stages and the architecture weights get correct gradients."""
    space = get_space(3)
    for recompute in ("front", "front+middle"):
        torch.manual_seed(0)
        node = MixedNode(space, 1, [1, 2, 4]).double()
        node.recompute = recompute
        g = torch.Generator().manual_seed(1)
        sources = [torch.randn(1, [1, 2, 4][space.edges[e].source], *([2 ** (2 - space.edges[e].source)] * 3),
                               generator=g, dtype=torch.float64, requires_grad=True) for e in node.edge_range]
        w = torch.rand(node.n, 5, generator=g, dtype=torch.float64, requires_grad=True)
        checked = [node.conv3, node.p3d_a[0], node.p3d_b[2], next(node.pre[0].parameters())]

        def f(ww, *tensors):
            return node(list(tensors[:node.n]), ww)

        assert torch.autograd.gradcheck(f, (w, *sources, *checked), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("D,L,f,patch,batch", [(2, 2, 2, 16, 2), (3, 3, 4, 32, 1)])
def test_each_mode_saves_less_and_the_estimate_follows(D, L, f, patch, batch):
    x = torch.randn(batch, 1, patch, patch, patch)
    measured = {}
    for recompute, ckpt in MODES:
        net = _net(recompute, ckpt, D=D, L=L, f=f)
        measured[recompute, ckpt] = saved_activation_bytes(lambda: net(x), exclude=net) / batch
        est = supernet_activation_bytes(get_space(D), L, 1, 3, f, [patch] * 3, recompute=recompute,
                                        checkpoint_layers=ckpt)
        assert est == pytest.approx(measured[recompute, ckpt], rel=0.10), (recompute, ckpt)
        assert est == pytest.approx(measured[recompute, ckpt], rel=0.05), (recompute, ckpt)  # in fact close
    none, front, middle, ckpt = (measured[m] for m in MODES[:4])
    assert front < 0.8 * none and middle < 0.75 * front and ckpt < 0.5 * middle


def test_mixed_precision_rebuild_matches_plain_autograd_under_autocast():
    """The rebuilt front runs under the forward's autocast state, the conv backward in its dtype."""
    x = torch.randn(1, 1, 16, 16, 16)
    results = []
    for recompute in ("none", "front", "front+middle"):
        net = _net(recompute)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x)
        out.float().square().mean().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (ref_out, ref_grads), *rest = results
    assert ref_out.dtype == torch.bfloat16
    for out, grads in rest:
        assert torch.equal(out, ref_out)
        for g, r in zip(grads, ref_grads):
            assert g.dtype == torch.float32
            torch.testing.assert_close(g, r, rtol=2e-2, atol=1e-3)


def test_config_fields_reach_the_supernet_and_the_estimate():
    base = METHOD.make_config("tiny")
    assert base.recompute_p3d_middle is False and base.activation_checkpointing is False
    net = METHOD.build_supernet(base, 1, 3)
    assert net.recompute == "front" and not net.checkpoint_layers
    assert {node.recompute for layer in net.layers for node in layer} == {"front"}
    mid = METHOD.make_config("tiny", {"recompute_p3d_middle": True})
    ck = METHOD.make_config("tiny", {"activation_checkpointing": True})
    assert METHOD.build_supernet(mid, 1, 3).recompute == "front+middle"
    assert METHOD.build_supernet(ck, 1, 3).checkpoint_layers
    e_base, e_mid, e_ck = (estimate_memory(c, 1, 3) for c in (base, mid, ck))
    a = [e.details["search_activation_bytes"] for e in (e_base, e_mid, e_ck)]
    assert a[0] > a[1] > a[2]
    assert e_ck.details["search_rerun_bytes_per_sample"] > 0 == e_base.details["search_rerun_bytes_per_sample"]
    # the search budget with checkpointing counts the layer backward reruns
    params = 3 * 4 * e_ck.details["search_parameters"]
    assert e_ck.search_bytes == (a[2] + e_ck.details["search_rerun_bytes_per_sample"] * ck.batch_size) + params
    assert e_base.retrain_bytes == e_mid.retrain_bytes == e_ck.retrain_bytes  # retraining is unaffected
    # the budget loss (eqs. 8-10) reads the same per-op costs in every mode
    for c in (mid, ck):
        assert torch.equal(METHOD.build_supernet(c, 1, 3).op_costs, net.op_costs)


def test_recompute_front_off_is_plain_autograd_and_refuses_middle_without_it():
    plain = METHOD.make_config("tiny", {"recompute_front": False})
    net = METHOD.build_supernet(plain, 1, 3)
    assert net.recompute == "none" and {node.recompute for layer in net.layers for node in layer} == {"none"}
    base = estimate_memory(METHOD.make_config("tiny"), 1, 3).details["search_activation_bytes"]
    assert estimate_memory(plain, 1, 3).details["search_activation_bytes"] > base
    with pytest.raises(ValueError, match="recompute_p3d_middle: needs recompute_front"):
        METHOD.make_config("tiny", {"recompute_front": False, "recompute_p3d_middle": True})


@pytest.mark.parametrize("overrides", [
    {"recompute_p3d_middle": True}, {"activation_checkpointing": True}, {"recompute_front": False},
    {"recompute_front": False, "activation_checkpointing": True},
], ids=["middle", "checkpointing", "plain", "plain+checkpointing"])
def test_contract_search_activation_bytes_in_each_mode(overrides):
    c = METHOD.make_config("tiny", overrides)
    details = METHOD.estimate_memory(c, 1, 3).details
    net = METHOD.build_supernet(c, 1, 3)
    x = torch.randn(c.batch_size, 1, *c.patch_size)
    measured = saved_activation_bytes(lambda: net(x), exclude=net)
    assert details["search_activation_bytes"] == pytest.approx(measured, rel=0.10)


# ---- fixed-seed search and resume ---------------------------------------------------------------
def _arch(ckpt_dir: Path) -> dict:
    state = torch.load(ckpt_dir / "checkpoint.pt", weights_only=False)["network"]
    return {"op_logits": state["op_logits"], "edge_logits": state["edge_logits"]}


def test_fixed_seed_tiny_search_gives_the_genotype_recorded_before_the_change(tmp_path):
    """The tiny preset at 16^3 (36 steps, seed 0), run at commit e765541 before issue 15, saved
    its genotype and final architecture logits; the memory work must not move them at all."""
    recorded = json.loads(RECORDED.read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded
    try:
        c = METHOD.make_config("tiny", {"patch_size": [16, 16, 16], "validate_every": 0, "checkpoint_every": 0})
        genotype = METHOD.search(synthetic_search_data(), c, Reporter([ListSink()]), tmp_path / "ckpt")
    finally:
        torch.set_num_threads(threads)
    assert json.loads(json.dumps(genotype, sort_keys=True, default=str)) == recorded["genotype"]
    arch = _arch(tmp_path / "ckpt")
    assert torch.equal(arch["op_logits"], torch.tensor(recorded["op_logits"]))
    assert torch.equal(arch["edge_logits"], torch.tensor(recorded["edge_logits"]))


def test_interrupted_search_resumes_exactly(tmp_path):
    """Default memory mode (the others give bitwise the same steps, see above)."""
    c = METHOD.make_config("tiny", {"num_layers": 2, "num_depths": 2, "stem_filters": 2, "patch_size": [16, 16, 16],
                                    "warmup_steps": 1, "weight_only_steps": 1, "search_steps": 4,
                                    "lr_milestones": [], "validate_every": 0, "checkpoint_every": 0,
                                    "snapshot_every": 0})
    full = METHOD.search(synthetic_search_data(), c, Reporter([ListSink()]), tmp_path / "a")
    steps = []
    token = CallableCancelToken(lambda: len(steps) >= 3)
    with pytest.raises(Cancelled):
        METHOD.search(synthetic_search_data(), c, Reporter([lambda e: steps.append(e) if e["type"] == "step" else None]),
                      tmp_path / "b", cancel=token)
    torch.rand(5)  # disturb the RNG as a new process would
    resumed = METHOD.search(synthetic_search_data(), dataclasses.replace(c), Reporter([ListSink()]), tmp_path / "b", resume=True)
    assert resumed == full
    a, b = _arch(tmp_path / "a"), _arch(tmp_path / "b")
    assert torch.equal(a["op_logits"], b["op_logits"]) and torch.equal(a["edge_logits"], b["edge_logits"])
