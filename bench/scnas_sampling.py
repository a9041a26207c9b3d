"""Benchmark: SCNAS's pair sampling (Algorithm 1: two ops per edge) against mixing every op
(DARTS-style: all 8 ops per edge weighted by softmax(alpha)) in the same SCNAS supernet.

Both modes get the same configuration and inputs, in one run; each (mode, configuration) is
measured in a fresh subprocess so that its peak memory is its own. Measured per mode:

- step time: forward + Dice/CE loss + backward + Adam step on all parameters (weights and
  alpha), median over ``--steps`` steps after one warm-up step;
- peak memory of the steps: CUDA ``max_memory_allocated`` (peak reset after the model and the
  input exist, so parameters are included and counted the same for both), CPU the growth of
  the process's peak RSS over its RSS once model and input exist (includes the Adam state
  allocated by the first step, the same in both modes; the allocator's caching blurs it);
- activation bytes: what autograd saves in one training forward (saved-tensor hooks; exact and
  device-independent), next to the estimate of ``nasengine.methods.scnas.memory`` for pairs.

Target (issue 8): pair sampling at most 0.35x the all-ops memory, at the tiny and at a
mid-sized configuration.

Usage::

    python bench/scnas_sampling.py                       # tiny and mid
    python bench/scnas_sampling.py --config 16,3,64,1 --steps 3
    python bench/scnas_sampling.py --steps 0             # autograd-saved bytes only (slow CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: stem channels, depth, patch edge, batch: the tiny preset and a mid-sized configuration.
DEFAULT_CONFIGS = ["8,2,32,2", "16,3,64,1"]
IN_CHANNELS = 1
NUM_CLASSES = 3


@dataclass
class BenchConfig:
    stem: int
    depth: int
    patch: int
    batch: int

    @classmethod
    def parse(cls, text: str) -> BenchConfig:
        stem, depth, patch, batch = (int(v) for v in text.split(","))
        return cls(stem, depth, patch, batch)

    def label(self) -> str:
        return f"F={self.stem}, depth {self.depth}, {self.patch}^3, batch {self.batch}"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(mode: str, config: BenchConfig, steps: int, device: str) -> dict:
    """One (mode, configuration) in this process: step times, peak memory, saved bytes."""
    from nasengine.methods.scnas.memory import activation_bytes
    from nasengine.methods.scnas.supernet import SCNASSupernet
    from nasengine.ops import saved_activation_bytes
    from nasengine.training.losses import DiceCELoss

    dev = torch.device(device)
    torch.manual_seed(0)
    net = SCNASSupernet(IN_CHANNELS, NUM_CLASSES, config.stem, config.depth, mixing=mode).to(dev).train()
    x = torch.randn(config.batch, IN_CHANNELS, *(config.patch,) * 3, device=dev)
    y = torch.randint(0, NUM_CLASSES, (config.batch, 1, *(config.patch,) * 3), device=dev)
    loss_fn = DiceCELoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step() -> float:
        started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - started

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = 0
    else:  # the RSS peak is the process's: take the base before the first step
        base = _rss_bytes()
    if steps > 0:
        step()  # warm-up (allocator, kernels, optimiser state): counted in the peak, not in the time
        times = [step() for _ in range(steps)]
        peak = int(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else max(0, _peak_rss_bytes() - base)
    else:  # --steps 0: saved bytes only (a slow CPU)
        times, peak = [float("nan")], None
    torch.manual_seed(1)
    saved = saved_activation_bytes(lambda: net(x), exclude=net)
    estimate = activation_bytes(IN_CHANNELS, NUM_CLASSES, config.stem, config.depth, (config.patch,) * 3,
                                supernet=True) * config.batch if mode == "pair" else None
    return {"mode": mode, "config": config.__dict__, "step_seconds": statistics.median(times),
            "peak_bytes": peak, "peak_kind": "cuda_max_allocated" if dev.type == "cuda" else "cpu_peak_rss_growth",
            "saved_bytes": int(saved), "estimate_bytes": estimate}


def _run_child(mode: str, config: str, steps: int, device: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--config", config, "--steps", str(steps),
                          "--device", device], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="stem,depth,patch,batch (repeatable)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--child", choices=("pair", "all"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configs = args.config or DEFAULT_CONFIGS
    if args.child:
        print(json.dumps(measure(args.child, BenchConfig.parse(configs[0]), args.steps, args.device)))
        return 0
    print(f"SCNAS supernet, pair sampling vs all ops mixed; device {args.device}, torch {torch.__version__}, "
          f"median of {args.steps} steps")
    print()
    print("| configuration | mode | step (s) | peak (MiB) | saved by autograd (MiB) | estimate (MiB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    ratios = []
    for text in configs:
        cfg = BenchConfig.parse(text)
        pair = _run_child("pair", text, args.steps, args.device)
        every = _run_child("all", text, args.steps, args.device)
        for r in (pair, every):
            seconds = "-" if r["step_seconds"] != r["step_seconds"] else f"{r['step_seconds']:.2f}"  # NaN: not timed
            print(f"| {cfg.label()} | {'pair (Alg. 1)' if r['mode'] == 'pair' else 'all 8 ops'} | "
                  f"{seconds} | {_mib(r['peak_bytes'])} | {_mib(r['saved_bytes'])} | "
                  f"{_mib(r['estimate_bytes'])} |")
        peak_ratio = pair["peak_bytes"] / max(1, every["peak_bytes"]) if pair["peak_bytes"] is not None else None
        ratios.append((cfg.label(), pair["step_seconds"] / every["step_seconds"], peak_ratio,
                       pair["saved_bytes"] / every["saved_bytes"]))
    print()
    print("| configuration | time pair/all | peak pair/all | saved pair/all | target saved/peak <= 0.35 |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, t, p, s in ratios:
        worst = s if p is None else max(p, s)
        print(f"| {label} | {'-' if t != t else f'{t:.2f}x'} | {'-' if p is None else f'{p:.2f}x'} | {s:.2f}x | "
              f"{'met' if worst <= 0.35 else 'missed'} |")
    print()
    print(f"peak: {pair['peak_kind']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
