"""A search's event stream for the compact-snapshot tests (no tests here): a real DiNTS tiny
supernet whose architecture parameters take Adam steps on random gradients (seeded), with the
engine's step, architecture (every 4 steps, rounded by ``compact_genotype``), validation and
checkpoint events as a search emits them."""
from __future__ import annotations

import time

STEP_KEYS = ("seg", "arch", "entropy")


def search_events(steps: int = 200, *, snapshot_every: int = 4, seed: int = 0) -> list[dict]:
    import torch

    from nasengine.methods import get_method
    from nasengine.training.common import compact_genotype

    torch.manual_seed(seed)
    method = get_method("dints")
    network = method.build_supernet(method.make_config("tiny", {}), 1, 3)
    arch = list(network.arch_parameters())
    optimiser = torch.optim.Adam(arch, lr=0.008)
    events: list[dict] = []

    def emit(kind: str, **payload) -> None:
        events.append({"seq": len(events) + 1, "type": kind, "time": time.time(), **payload})

    emit("run_started", phase="search", total_steps=steps, device="cpu", resumed_from_step=None)
    emit("architecture", step=0, genotype=compact_genotype(network.snapshot()))
    for step in range(1, steps + 1):
        for p in arch:
            p.grad = torch.randn_like(p) * 0.1
        optimiser.step()
        losses = {k: float(torch.rand(1)) for k in STEP_KEYS}
        emit("step", step=step, total_steps=steps, progress=step / steps, phase="search", losses=losses,
             lrs={"weights": 0.025, "arch": 0.008}, metrics={}, memory_bytes=600_000_000 + step, memory_kind="rss",
             seconds=0.3 + float(torch.rand(1)) / 100, reg_scales=None)
        if step % snapshot_every == 0:
            emit("architecture", step=step, genotype=compact_genotype(network.snapshot()))
        if step % 12 == 0:
            emit("validation", step=step, dice={"liver": 0.5, "tumour": None}, mean_dice=0.5)
            emit("checkpoint", step=step, path="checkpoints/checkpoint.pt")
    return events
