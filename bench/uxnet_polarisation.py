"""Benchmark: how the weight of UXNet's polarisation term J = -(sigma(beta) - 0.5)^2 (eq. 2; the
paper's value is cut off) moves the gates in a short search on the demo data.

For each weight (``--weights``) one search runs through ``nasengine.api.search`` (tiny preset,
``--steps`` bi-level steps, ``--arch-lr``, tau from ``--tau``) on the same demo data and seed.
Reported per weight, from the last step event and the genotype: the mean distance of the gates
from 0.5, the polarised share (sigma within 0.1 of 0 or 1), the share at or above tau, J, the
task part of the architecture loss, and whether the derivation needed its fallback path.

Usage::

    python bench/uxnet_polarisation.py                       # weights 0, 1, 10; 40 steps
    python bench/uxnet_polarisation.py --weights 0,1,10,100 --steps 100 --arch-lr 0.03
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from nasengine import api
from nasengine.events.sinks import read_events
from nasengine.methods import register, registry


def run(weight: float, data: Path, out: Path, steps: int, arch_lr: float, tau: float) -> dict:
    overrides = {"polarisation_weight": weight, "search_steps": steps, "weight_only_steps": 0,
                 "arch_lr": arch_lr, "tau": tau, "snapshot_every": 0, "checkpoint_every": 0}
    genotype = api.search("uxnet", data, out, preset="tiny", overrides=overrides, device="cpu")
    steps_ev = [e for e in read_events(out / api.EVENTS_FILE) if e["type"] == "step"]
    last = steps_ev[-1]
    m = last["metrics"]
    return {"weight": weight, "gate_min": round(m["gate_min"], 4), "gate_max": round(m["gate_max"], 4),
            "polarised": m["gate_polarised"], "kept_at_tau": m["gate_kept"], "J": m["polarisation_J"],
            "arch_seg": round(last["losses"]["arch_seg"], 4),
            "fallback": genotype["meta"]["gate_fallback"] is not None,
            "kept_gated_connections": genotype["meta"]["kept_gated_connections"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="0,1,10", help="J weights, comma-separated")
    parser.add_argument("--steps", type=int, default=40, help="bi-level steps per search")
    parser.add_argument("--arch-lr", type=float, default=0.03, help="Adam rate of alpha and beta")
    parser.add_argument("--tau", type=float, default=0.75)
    args = parser.parse_args()
    if "uxnet" not in registry:  # until BUILTIN_METHODS has the line
        from nasengine.methods.uxnet import METHOD

        register(METHOD)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = api.make_demo_data(root / "demo", n_cases=5, shape=(32, 32, 32))
        for w in (float(v) for v in args.weights.split(",")):
            print(json.dumps(run(w, data, root / f"w{w}", args.steps, args.arch_lr, args.tau)), flush=True)


if __name__ == "__main__":
    main()
