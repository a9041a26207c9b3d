"""Benchmark: our DiNTS search network against MONAI 1.6.1's ``TopologySearch`` + ``DiNTS``.

Both implementations get the same configuration (channel multiplier, blocks, depths, patch) and
the same inputs. Each (implementation, configuration) runs in a fresh subprocess, so that its
peak memory belongs to that measurement alone, with glibc's mmap threshold fixed
(``MALLOC_MMAP_THRESHOLD_``) so that freed tensors go back to the OS and RSS follows live memory
for both sides alike.

Implementations (``--impls``): ``MONAI``; ``ours`` (the default supernet, rebuilding the
resampling, concatenation and ReLU in backward); ``ours+middle`` (also the P3D middle tensors:
config ``recompute_p3d_middle``); ``ours+ckpt`` (per-layer activation checkpointing: config
``activation_checkpointing``); ``ours-before`` (plain autograd, the fused node before issue 15:
config ``recompute_front`` off).

Measured per implementation:
- saved for backward: bytes autograd saves in one training forward of the network (saved-tensor
  hooks, each storage once, parameters left out; the loss adds the same few full-resolution
  tensors to both sides and is left out). Stable on a shared CPU and close to what a GPU holds;
- peak memory of the process over a search step (CUDA: ``max_memory_allocated``; CPU: peak
  RSS minus the RSS before the model was built): weights, gradients, optimiser state, inputs,
  activations and whatever backward allocates on top;
- weight step: forward + Dice/CE loss + backward + SGD step on the network weights;
- architecture step: forward + loss with every regulariser of eq. 11 + backward + Adam step on
  the architecture parameters (MONAI: as in its DiNTS search tutorial); both as wall time and
  as the process's CPU time (all threads), which a shared, loaded CPU disturbs far less;
- for ours, the search ``estimate`` (``supernet_activation_bytes``) against the saved bytes.

Times are only taken at ``--time-sizes`` (CPU at 96^3 is slow); memory is measured at every
size. An optional table compares the retraining estimate with the decoded network's saved
bytes (``--retrain-check``).

Usage::

    python bench/dints_vs_monai.py                                  # 0.5x, 12 x 4 at 32, 64, 96
    python bench/dints_vs_monai.py --sizes 32,64 --time-sizes 32 --steps 2 --repeats 1
    python bench/dints_vs_monai.py --mul 0.25 --blocks 6 --depths 3 --sizes 32 --impls MONAI,ours
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

IN_CHANNELS = 1
NUM_CLASSES = 3
BATCH = 1
IMPLS = ("MONAI", "ours", "ours+middle", "ours+ckpt", "ours-before")
#: ours variants: (recompute mode of the fused node, per-layer checkpointing)
OURS_MODES = {"ours": ("front", False), "ours+middle": ("front+middle", False),
              "ours+ckpt": ("front", True), "ours-before": ("none", False)}
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


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

    def spec(self) -> str:
        return f"{self.channel_mul},{self.blocks},{self.depths},{self.patch}"

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

    def __init__(self, cfg: BenchConfig, device: torch.device, impl: str = "ours"):
        from nasengine.methods.dints.bench_support import build_reference_supernet

        self.name = impl
        self.recompute, self.checkpoint_layers = OURS_MODES[impl]
        self.net = build_reference_supernet(
            channel_mul=cfg.channel_mul, blocks=cfg.blocks, depths=cfg.depths,
            in_channels=IN_CHANNELS, out_channels=NUM_CLASSES, patch=cfg.patch,
            recompute=self.recompute, checkpoint_layers=self.checkpoint_layers,
        ).to(device)
        self.weights = list(self.net.weight_parameters())
        self.arch = list(self.net.arch_parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def arch_regularisers(self, x: torch.Tensor) -> torch.Tensor:
        return sum(self.net.arch_regularisers().values())

    def decode(self):
        return self.net.decode()

    def estimate_bytes(self, cfg: BenchConfig) -> int:
        """The search estimate of saved activations for this variant (per sample, fp32)."""
        from nasengine.lattice.space import get_space
        from nasengine.methods.dints.bench_support import stem_filters_for
        from nasengine.methods.dints.memory import supernet_activation_bytes

        return supernet_activation_bytes(
            get_space(cfg.depths), cfg.blocks, IN_CHANNELS, NUM_CLASSES, stem_filters_for(cfg.channel_mul),
            [cfg.patch] * 3, recompute=self.recompute, checkpoint_layers=self.checkpoint_layers)


def _adapter(impl: str, cfg: BenchConfig, device: torch.device):
    return MonaiAdapter(cfg, device) if impl == "MONAI" else OursAdapter(cfg, device, impl)


def measure(impl: str, cfg: BenchConfig, steps: int, timed: bool, peak_step: bool = True) -> dict:
    """Run in a fresh process: returns the measured figures for one implementation."""
    from monai.losses import DiceCELoss

    from nasengine.ops import saved_activation_bytes

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator().manual_seed(0)
    shape = (BATCH, IN_CHANNELS, cfg.patch, cfg.patch, cfg.patch)
    x = torch.randn(shape, generator=generator).to(device)
    y = torch.randint(0, NUM_CLASSES, (BATCH, 1, cfg.patch, cfg.patch, cfg.patch), generator=generator).to(device)
    rss_before = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        allocated_before = torch.cuda.memory_allocated()
    model = _adapter(impl, cfg, device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
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

    model.net.train()
    with torch.enable_grad():
        saved = saved_activation_bytes(lambda: model.forward(x), exclude=model.net)
    # One step of each kind (untimed: allocator warm-up and lazy initialisation); the peak
    # covers them, the optimiser state they create and the timed steps. Untimed (memory only,
    # large patches on a CPU): one weight step, whose forward and backward are the same.
    if peak_step or timed:
        weight_step()
    if timed:
        arch_step()
    sync()
    timings = {"weight_step_s": None, "arch_step_s": None, "weight_step_cpu_s": None, "arch_step_cpu_s": None}
    if timed:
        for name, step in (("weight_step", weight_step), ("arch_step", arch_step)):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                step()
            sync()
            timings[f"{name}_s"] = (time.perf_counter() - start) / steps
            # CPU seconds of the process (all threads): on a shared CPU far steadier than wall time
            timings[f"{name}_cpu_s"] = (time.process_time() - start_cpu) / steps
    if not (peak_step or timed):
        peak = None  # no step run: a forward alone is not the step's peak
    elif device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - allocated_before
    else:
        peak = max(0, _peak_rss_bytes() - rss_before)

    decode_s = decode_bytes = None
    if timed:
        tracemalloc.start()
        start = time.perf_counter()
        model.decode()
        decode_s = time.perf_counter() - start
        _, decode_bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    return {
        "impl": impl,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "load_avg": os.getloadavg()[0],
        **timings,
        "saved_bytes": saved,
        "estimate_bytes": model.estimate_bytes(cfg) * BATCH if impl != "MONAI" else None,
        "peak_memory_bytes": peak,
        "weight_params": sum(p.numel() for p in model.weights),
        "arch_params": sum(p.numel() for p in model.arch),
        "decode_s": decode_s,
        "decode_bytes": decode_bytes,
    }


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
        env={**os.environ, **CHILD_ENV},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_alternating(cfg: BenchConfig, impls: list[str], steps: int, repeats: int, timed: bool,
                         peak_step: bool) -> dict[str, dict]:
    """Alternate the implementations over ``repeats`` fresh processes and keep the median of
    each figure, so that load from other processes on a shared machine hits all sides alike."""
    runs: dict[str, list[dict]] = {impl: [] for impl in impls}
    for _ in range(repeats if timed else 1):
        for impl in impls:
            runs[impl].append(_run_child(["--child", f"{impl}:{cfg.spec()}", "--steps", str(steps),
                                          "--timed", str(int(timed)), "--peak", str(int(peak_step))]))
            print(f"  {impl} {cfg.patch}^3: {json.dumps(runs[impl][-1])}", file=sys.stderr, flush=True)
    medians = {}
    for impl, rows in runs.items():
        merged = dict(rows[0])
        for key, value in rows[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and None not in (row[key] for row in rows):
                merged[key] = statistics.median(row[key] for row in rows)
        medians[impl] = merged
    return medians


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f} MB"


def _sec(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _ratio(a, b) -> str:
    return "-" if a is None or b is None or not b else f"{a / b:.2f}"


def print_table(cfg: BenchConfig, results: dict[str, dict]) -> None:
    impls = list(results)
    ref = results.get("MONAI")
    any_row = next(iter(results.values()))
    print(f"\n### {cfg.label()} (batch {BATCH}, {any_row['device']}, {any_row['threads']} threads, "
          f"load average {any_row['load_avg']:.1f})\n")
    others = [i for i in impls if i != "MONAI"]
    head = "| measure | " + " | ".join(impls) + " | " + " | ".join(f"{i} / MONAI" for i in others if ref) + " |"
    print(head)
    print("| --- |" + " ---: |" * (len(impls) + (len(others) if ref else 0)))
    rows = [("saved for backward", "saved_bytes", _mb), ("peak memory", "peak_memory_bytes", _mb),
            ("weight step", "weight_step_s", _sec), ("architecture step", "arch_step_s", _sec),
            ("weight step, CPU time", "weight_step_cpu_s", _sec), ("architecture step, CPU time", "arch_step_cpu_s", _sec),
            ("decode time", "decode_s", _sec), ("weight parameters", "weight_params", lambda v: f"{v:,}")]
    for name, key, fmt in rows:
        cells = [fmt(results[i][key]) for i in impls]
        ratios = [_ratio(results[i][key], ref[key]) for i in others] if ref else []
        print(f"| {name} | " + " | ".join(cells + ratios) + " |")


def print_estimate_table(rows: list[tuple[BenchConfig, str, dict]]) -> None:
    print("\n### Search memory: estimate vs bytes saved for backward (fp32, batch 1)\n")
    print("| configuration | variant | estimate | saved for backward | estimate / measured |")
    print("| --- | --- | ---: | ---: | ---: |")
    for cfg, impl, r in rows:
        print(f"| {cfg.label()} | {impl} | {_mb(r['estimate_bytes'])} | {_mb(r['saved_bytes'])} | "
              f"{r['estimate_bytes'] / r['saved_bytes']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mul", type=float, default=0.5, help="channel multiplier (MONAI's channel_mul)")
    parser.add_argument("--blocks", type=int, default=12, help="lattice layers (MONAI's num_blocks)")
    parser.add_argument("--depths", type=int, default=4, help="resolution levels (MONAI's num_depths)")
    parser.add_argument("--sizes", default="32,64,96", help="patch sizes (comma-separated cubes)")
    parser.add_argument("--time-sizes", default=None,
                        help="patch sizes at which steps are timed (default: every size); memory is always measured")
    parser.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated, from {', '.join(IMPLS)}")
    parser.add_argument("--steps", type=int, default=2, help="timed steps of each kind")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per implementation when timing, alternating; medians are reported")
    parser.add_argument("--peak-sizes", default=None,
                        help="patch sizes at which a weight step is run for the peak (default: every size); "
                             "elsewhere only the saved bytes of one forward are measured")
    parser.add_argument("--retrain-check", action="store_true",
                        help="also compare the retraining estimate with the decoded network's saved bytes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--timed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--peak", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-memory-check", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        impl, cfg_text = args.child.split(":", 1)
        print(json.dumps(measure(impl, BenchConfig.parse(cfg_text), args.steps, bool(args.timed), bool(args.peak))))
        return
    if args.child_memory_check:
        print(json.dumps(retrain_estimate_vs_saved_tensors(BenchConfig.parse(args.child_memory_check))))
        return

    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = sorted(set(impls) - set(IMPLS))
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; choose from {list(IMPLS)}")
    sizes = [int(v) for v in args.sizes.split(",")]
    time_sizes = sizes if args.time_sizes is None else [int(v) for v in args.time_sizes.split(",") if v]
    peak_sizes = sizes if args.peak_sizes is None else [int(v) for v in args.peak_sizes.split(",") if v]
    configs = [BenchConfig(args.mul, args.blocks, args.depths, p) for p in sizes]
    print(f"torch {torch.__version__}, {args.steps} timed steps per measure, median of {args.repeats} fresh "
          f"processes per implementation (alternating) where timed; timed at {time_sizes or 'no size'}, "
          f"peak at {peak_sizes or 'no size'}")
    estimate_rows, retrain_rows = [], []
    for cfg in configs:
        results = _measure_alternating(cfg, impls, args.steps, args.repeats, cfg.patch in time_sizes,
                                       cfg.patch in peak_sizes)
        print_table(cfg, results)
        estimate_rows += [(cfg, impl, r) for impl, r in results.items() if r["estimate_bytes"]]
        if args.retrain_check:
            retrain_rows.append((cfg, _run_child(["--child-memory-check", cfg.spec()])))
    if estimate_rows:
        print_estimate_table(estimate_rows)
    if retrain_rows:
        print("\n### Retrain memory: estimate vs bytes saved for backward (CPU, fp32, batch 1)\n")
        print("| configuration | estimate | saved for backward | estimate / measured |")
        print("| --- | ---: | ---: | ---: |")
        for cfg, row in retrain_rows:
            print(f"| {cfg.label()} | {_mb(row['estimate_bytes'])} | {_mb(row['saved_bytes'])} | "
                  f"{row['estimate_bytes'] / row['saved_bytes']:.2f} |")


if __name__ == "__main__":
    main()
