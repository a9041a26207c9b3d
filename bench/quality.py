"""Did the search help? The searched architecture against its two controls (issue 12).

On the anatomy-like phantom (``nasengine.data.demo.make_anatomy_data``: cortex around medulla
around a cyst, a vessel touching the cortex, bias field, noise, 0.9 x 0.9 x 2.5 mm), three
networks are trained with the same recipe (the retraining preset ``cpu``: nnU-Net's recipe),
the same step budget, patch, batch and data, for each of ``--seeds`` seeds:

- ``searched``: the genotype of ``--genotype``, or of a search run here (``--method``,
  ``--search-preset``);
- ``random``: an architecture drawn from the same method's space (``random_architecture``);
- ``handdesigned``: MONAI DynUNet configured from the dataset as nnU-Net does, sized to the
  searched network's parameters (``handdesigned_architecture``).

Each model is scored on the labelled test cases (never trained or validated on) through the
same sliding-window prediction path users get, in each input's own geometry
(``api.evaluate``: Gaussian windows, overlap 0.5, no post-processing). The table gives
per-class test Dice as mean +- sd over seeds, parameters and training seconds. Nothing here
is asserted: it prints what it measured.

    .venv/bin/python bench/quality.py --steps 300 --seeds 3 --out /tmp/quality
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/voxelsearch-quality", help="work folder")
    p.add_argument("--cases", type=int, default=10, help="labelled training cases")
    p.add_argument("--test-cases", type=int, default=4, help="labelled test cases")
    p.add_argument("--shape", type=int, nargs=3, default=[64, 64, 32], help="volume shape")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=300, help="training steps of every network")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--patch", type=int, default=32, help="patch edge (cube)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--method", default="dints")
    p.add_argument("--genotype", default=None, help="searched genotype.json (else search)")
    p.add_argument("--search-preset", default="tiny")
    p.add_argument("--search-set", action="append", default=[], metavar="KEY=VALUE",
                   help="search setting overrides (also the space the random control is "
                        "drawn from: give those of --genotype's search)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--only", nargs="*", default=None,
                   help="subset of: searched random handdesigned")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from nasengine import api
    from nasengine.config import parse_set_options
    from nasengine.controls import handdesigned_architecture, random_architecture
    from nasengine.data.demo import make_anatomy_data
    from nasengine.genotype import load
    from nasengine.inference.bundle import network_from_genotype

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    data = out / "phantom"
    if not (data / "dataset.json").exists():
        make_anatomy_data(data, n_cases=args.cases, n_test=args.test_cases,
                          shape=tuple(args.shape), seed=args.data_seed)
    patch = [args.patch] * 3
    if args.genotype:
        searched = load(args.genotype)
        search_note = f"given: {args.genotype}"
    else:
        started = time.perf_counter()
        searched = api.search(args.method, data, out / "search", preset=args.search_preset,
                              overrides=parse_set_options(args.search_set))
        search_note = (f"{args.method} preset {args.search_preset}, searched here in "
                       f"{time.perf_counter() - started:.0f} s")
    method = searched.get("method", args.method)
    n_searched = sum(p.numel() for p in network_from_genotype(searched).parameters())
    prepared = api.prepare_data(data, divisor=8, patch_size=tuple(patch))
    kinds = args.only or ["searched", "random", "handdesigned"]
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    for seed in range(args.seeds):
        genotypes = {
            "searched": lambda: searched,
            "random": lambda s=seed: random_architecture(
                method, data, preset=args.search_preset,
                overrides=parse_set_options(args.search_set), seed=s),
            "handdesigned": lambda: handdesigned_architecture(
                prepared.plan, patch, target_parameters=n_searched),
        }
        for kind in kinds:
            genotype = genotypes[kind]()
            n_params = sum(p.numel() for p in network_from_genotype(genotype).parameters())
            model = out / f"{kind}-seed{seed}"
            started = time.perf_counter()
            api.retrain(genotype, data, model, preset="cpu",
                        overrides={"warmup_steps": 0, "steps": args.steps, "seed": seed,
                                   "patch_size": patch, "batch_size": args.batch,
                                   "validate_every": 0, "checkpoint_every": 0,
                                   "export": False})
            seconds = time.perf_counter() - started
            report = api.evaluate(model, data, postprocess="none")
            dice = {name: report["summary"][name]["dice"]["mean"] for name in report["classes"]}
            results[kind].append({"seed": seed, "dice": dice, "mean": report["mean_dice"],
                                  "parameters": n_params, "seconds": seconds,
                                  "n_test": len(report["cases"])})
            print(f"[{kind} seed {seed}] mean test Dice {report['mean_dice']:.3f} "
                  f"({n_params} parameters, {seconds:.0f} s)", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results, args, search_note)
    return 0


def _ms(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {sd:.3f}"


def print_table(results: dict[str, list[dict]], args, search_note: str) -> None:
    classes = next(iter(r for rows in results.values() for r in rows))["dice"].keys()
    head = ["network", *classes, "mean", "parameters", "train s"]
    print(f"\nTest Dice (mean +- sd over {args.seeds} seeds; {args.steps} steps, batch "
          f"{args.batch}, patch {args.patch}^3, recipe nnunet; searched: {search_note})")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for kind, rows in results.items():
        cells = [_ms([r["dice"][c] for r in rows]) for c in classes]
        cells.append(_ms([r["mean"] for r in rows]))
        cells.append(str(rows[0]["parameters"]) if kind != "random" else
                     "/".join(str(r["parameters"]) for r in rows))
        cells.append(f"{statistics.mean(r['seconds'] for r in rows):.0f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
