"""Benchmark: our DiNTS search network against MONAI 1.6.1's ``TopologySearch`` + ``DiNTS``.

Both implementations get the same configuration (channel multiplier, blocks, depths, patch) and
the same inputs, in one run. Each (implementation, configuration) is measured in a fresh
subprocess so that peak memory belongs to that measurement alone.

Measured per implementation:
- weight step: forward + Dice/CE loss + backward + SGD step on the network weights;
- architecture step: forward + loss with every regulariser of eq. 11 + backward + Adam step on
  the architecture parameters (MONAI: as in its DiNTS search tutorial);
- peak memory held by the steps (CUDA: ``max_memory_allocated``; CPU: growth of the process's
  peak RSS over its RSS once model and inputs exist);
- parameter counts (weights, architecture);
- decode time and decode memory (``tracemalloc`` peak, which sees numpy and scipy buffers).

A second table compares ``estimate``'s retraining memory with the bytes autograd actually
saves for backward in the decoded network (counted with saved-tensor hooks).

Usage::

    python bench/dints_vs_monai.py                      # both default configurations
    python bench/dints_vs_monai.py --config 0.25,6,3,32 --steps 3
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
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_CONFIGS = ["0.25,6,3,32", "0.5,12,4,32"]
IN_CHANNELS = 1
NUM_CLASSES = 3
BATCH = 1


@dataclass
class BenchConfig:
    channel_mul: float
    blocks: int
    depths: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> BenchConfig:
        mul, blocks, depths, patch = text.split(",")
        return cls(float(mul), int(blocks), int(depths), int(patch))

    def label(self) -> str:
        return f"{self.channel_mul}x, {self.blocks} blocks, {self.depths} depths, {self.patch}^3"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MonaiAdapter:
    """MONAI's search network driven as in MONAI's DiNTS search tutorial."""

    name = "MONAI"

    def __init__(self, cfg: BenchConfig, device: torch.device):
        from monai.networks.nets import DiNTS, TopologySearch

        self.space = TopologySearch(
            channel_mul=cfg.channel_mul, num_blocks=cfg.blocks, num_depths=cfg.depths,
            use_downsample=True, device=str(device),
        )
        self.net = DiNTS(
            dints_space=self.space, in_channels=IN_CHANNELS, num_classes=NUM_CLASSES, use_downsample=True,
        ).to(device)
        self.weights = list(self.net.weight_parameters())
        self.arch = [self.space.log_alpha_a, self.space.log_alpha_c]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def arch_regularisers(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        space = self.space
        probs_a, _ = space.get_prob_a(child=True)
        entropy_a = -(probs_a * torch.log(probs_a + 1e-5)).mean()
        entropy_c = -(F.softmax(space.log_alpha_c, -1) * F.log_softmax(space.log_alpha_c, -1)).mean()
        topology = space.get_topology_entropy(probs_a)
        ram_full = space.get_ram_cost_usage(x.shape, full=True)
        ram_usage = space.get_ram_cost_usage(x.shape)
        ram_loss = torch.abs(0.8 - ram_usage / ram_full)
        return entropy_a + entropy_c + ram_loss + 0.001 * topology

    def decode(self):
        return self.space.decode()


class OursAdapter:
    """Our DiNTS search network (nasengine.methods.dints) at MONAI's configuration."""

    name = "ours"

    def __init__(self, cfg: BenchConfig, device: torch.device):
        from nasengine.methods.dints.bench_support import build_reference_supernet

        self.net = build_reference_supernet(
            channel_mul=cfg.channel_mul, blocks=cfg.blocks, depths=cfg.depths,
            in_channels=IN_CHANNELS, out_channels=NUM_CLASSES, patch=cfg.patch,
        ).to(device)
        self.weights = list(self.net.weight_parameters())
        self.arch = list(self.net.arch_parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def arch_regularisers(self, x: torch.Tensor) -> torch.Tensor:
        return sum(self.net.arch_regularisers().values())

    def decode(self):
        return self.net.decode()


ADAPTERS = {"MONAI": MonaiAdapter, "ours": OursAdapter}


def measure(impl: str, cfg: BenchConfig, steps: int) -> dict:
    """Run in a fresh process: returns the measured figures for one implementation."""
    from monai.losses import DiceCELoss

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = ADAPTERS[impl](cfg, device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    generator = torch.Generator().manual_seed(0)
    shape = (BATCH, IN_CHANNELS, cfg.patch, cfg.patch, cfg.patch)
    x = torch.randn(shape, generator=generator).to(device)
    y = torch.randint(0, NUM_CLASSES, (BATCH, 1, cfg.patch, cfg.patch, cfg.patch), generator=generator).to(device)
    weight_opt = torch.optim.SGD(model.weights, lr=0.025, momentum=0.9, weight_decay=4e-5)
    arch_opt = torch.optim.Adam(model.arch, lr=0.008, weight_decay=0.0)

    def weight_step():
        weight_opt.zero_grad(set_to_none=True)
        loss_fn(model.forward(x), y).backward()
        weight_opt.step()

    def arch_step():
        arch_opt.zero_grad(set_to_none=True)
        (loss_fn(model.forward(x), y) + model.arch_regularisers(x)).backward()
        arch_opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    # One untimed step of each kind: allocator warm-up and lazy initialisation.
    weight_step()
    arch_step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = _rss_bytes()

    timings = {}
    for name, step in (("weight_step_s", weight_step), ("arch_step_s", arch_step)):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        timings[name] = (time.perf_counter() - start) / steps
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = max(0, _peak_rss_bytes() - rss_before) + _tensor_bytes(model)

    tracemalloc.start()
    start = time.perf_counter()
    model.decode()
    decode_s = time.perf_counter() - start
    _, decode_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "impl": impl,
        "device": str(device),
        **timings,
        "peak_memory_bytes": peak,
        "weight_params": sum(p.numel() for p in model.weights),
        "arch_params": sum(p.numel() for p in model.arch),
        "decode_s": decode_s,
        "decode_bytes": decode_peak,
    }


def _tensor_bytes(model) -> int:
    """Weights and architecture parameters with their gradients (held across steps)."""
    return 2 * sum(p.numel() * p.element_size() for p in model.weights + model.arch)


def retrain_estimate_vs_saved_tensors(cfg: BenchConfig) -> dict:
    """Compare the engine's retrain memory estimate with bytes saved for backward (CPU, fp32)."""
    from nasengine.methods.dints.bench_support import retrain_memory_check

    return retrain_memory_check(
        channel_mul=cfg.channel_mul, blocks=cfg.blocks, depths=cfg.depths,
        in_channels=IN_CHANNELS, out_channels=NUM_CLASSES, patch=cfg.patch,
    )


def _run_child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_alternating(cfg: BenchConfig, steps: int, repeats: int) -> dict[str, dict]:
    """Alternate ours/MONAI over ``repeats`` fresh processes and keep the median of each figure,
    so that load from other processes on a shared machine hits both sides alike."""
    runs: dict[str, list[dict]] = {"ours": [], "MONAI": []}
    spec = f"{cfg.channel_mul},{cfg.blocks},{cfg.depths},{cfg.patch}"
    for _ in range(repeats):
        for impl in runs:
            runs[impl].append(_run_child(["--child", f"{impl}:{spec}", "--steps", str(steps)]))
    medians = {}
    for impl, rows in runs.items():
        merged = dict(rows[0])
        for key, value in rows[0].items():
            if isinstance(value, (int, float)):
                merged[key] = statistics.median(row[key] for row in rows)
        medians[impl] = merged
    return medians


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def print_table(cfg: BenchConfig, ours: dict, monai: dict) -> None:
    rows = [
        ("weight step", _ms(ours["weight_step_s"]), _ms(monai["weight_step_s"]), ours["weight_step_s"] / monai["weight_step_s"]),
        ("architecture step", _ms(ours["arch_step_s"]), _ms(monai["arch_step_s"]), ours["arch_step_s"] / monai["arch_step_s"]),
        ("peak memory", _mb(ours["peak_memory_bytes"]), _mb(monai["peak_memory_bytes"]), ours["peak_memory_bytes"] / max(1, monai["peak_memory_bytes"])),
        ("weight parameters", f"{ours['weight_params']:,}", f"{monai['weight_params']:,}", ours["weight_params"] / monai["weight_params"]),
        ("architecture parameters", f"{ours['arch_params']:,}", f"{monai['arch_params']:,}", ours["arch_params"] / monai["arch_params"]),
        ("decode time", _ms(ours["decode_s"]), _ms(monai["decode_s"]), ours["decode_s"] / monai["decode_s"]),
        ("decode memory", _mb(ours["decode_bytes"]), _mb(monai["decode_bytes"]), ours["decode_bytes"] / max(1, monai["decode_bytes"])),
    ]
    print(f"\n### {cfg.label()} (batch {BATCH}, {ours['device']})\n")
    print("| measure | ours | MONAI 1.6.1 | ours / MONAI |")
    print("| --- | ---: | ---: | ---: |")
    for name, a, b, ratio in rows:
        print(f"| {name} | {a} | {b} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", help="channel_mul,blocks,depths,patch (repeatable)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each kind")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per implementation, alternating ours/MONAI; medians are reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-memory-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        impl, cfg_text = args.child.split(":", 1)
        print(json.dumps(measure(impl, BenchConfig.parse(cfg_text), args.steps)))
        return
    if args.child_memory_check:
        print(json.dumps(retrain_estimate_vs_saved_tensors(BenchConfig.parse(args.config[0]))))
        return

    configs = [BenchConfig.parse(c) for c in (args.config or DEFAULT_CONFIGS)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.steps} timed steps per measure, "
          f"median of {args.repeats} fresh processes per implementation (alternating)")
    memory_rows = []
    for cfg in configs:
        results = _measure_alternating(cfg, args.steps, args.repeats)
        print_table(cfg, results["ours"], results["MONAI"])
        memory_rows.append((cfg, _run_child(["--child-memory-check", "--config", f"{cfg.channel_mul},{cfg.blocks},{cfg.depths},{cfg.patch}"])))

    print("\n### Retrain memory: estimate vs bytes saved for backward (CPU, fp32, batch 1)\n")
    print("| configuration | estimate | saved for backward | estimate / measured |")
    print("| --- | ---: | ---: | ---: |")
    for cfg, row in memory_rows:
        print(f"| {cfg.label()} | {_mb(row['estimate_bytes'])} | {_mb(row['saved_bytes'])} | {row['estimate_bytes'] / row['saved_bytes']:.2f} |")


if __name__ == "__main__":
    main()
