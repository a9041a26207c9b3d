"""DAST lambda (sigma) sweep on a synthetic task: where do transformers go as the budget tightens?

Paper sec. 4.4 / Fig. 3: with a tighter memory budget (lambda 0.8 -> 0.2) transformers move to
lower resolutions. Two experiments, both printed as JSON lines:

1. ``memory_term``: the architecture parameters of the paper's 12 x 4 space (and of ``tiny``)
   descended on the memory term of eq. 10 alone (Adam, the paper's arch rate, 1000 steps),
   costs at the paper's retrain network. It shows what the budget loss by itself asks of the
   op weights.
2. ``search``: the tiny preset searched through ``nasengine.api.search`` on the demo data at
   each sigma (a real bi-level search: segmentation loss + every regulariser), with the final
   transformer weight per level and the levels of the decoded transformer edges.

Usage: ``python bench/dast_lambda_sweep.py [--out DIR] [--search-steps N] [--skip-search]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from nasengine import api
from nasengine.lattice import losses
from nasengine.lattice.space import get_space
from nasengine.methods import register, registry
from nasengine.methods.dast import METHOD, TRANSFORMER
from nasengine.methods.dast.memory import op_cost_table, retrain_filters

SIGMAS = (0.2, 0.5, 0.8)


def level_means(values: torch.Tensor, space) -> list[float]:
    """``[L, E]`` -> mean over layers and the edges into each level (index d = level d + 1)."""
    out = []
    for d in range(space.D):
        r = space.edges_into(d)
        out.append(round(float(values[:, r.start:r.stop].mean()), 3))
    return out


def memory_term_only(preset: str, sigma: float, steps: int = 1000) -> dict:
    config = METHOD.make_config(preset)
    space = get_space(config.num_depths)
    costs = op_cost_table(space, retrain_filters(config.stem_filters, config.retrain_channel_multiplier),
                          config.retrain_patch_size, {TRANSFORMER: config.transformer_params()})
    op_costs, edge_costs = (torch.tensor(c, dtype=torch.float32) for c in costs)
    torch.manual_seed(0)
    alpha = torch.nn.Parameter(torch.randn(config.num_layers, space.E, 3) * 0.01 + 1)
    edges = torch.nn.Parameter(torch.randn(config.num_layers, space.E) * 0.01)
    opt = torch.optim.Adam([alpha, edges], lr=config.arch_lr)
    for _ in range(steps):
        loss = losses.memory_loss(losses.edge_marginals(edges), F.softmax(alpha, -1), op_costs, edge_costs, sigma)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        a = F.softmax(alpha, -1)
        return {"experiment": "memory_term", "preset": preset, "sigma": sigma, "loss": round(float(loss), 5),
                "transformer_by_level": level_means(a[..., 2], space), "conv_by_level": level_means(a[..., 1], space),
                "mean_edge_marginal": round(float(losses.edge_marginals(edges).mean()), 3)}


def search(sigma: float, data: Path, out: Path, search_steps: int) -> dict:
    genotype = api.search("dast", data, out, preset="tiny", device="cpu",
                          overrides={"sigma": sigma, "search_steps": search_steps, "validate_every": 0,
                                     "lr_milestones": [10 * search_steps, 20 * search_steps]})
    steps = [json.loads(line) for line in (out / api.EVENTS_FILE).read_text().splitlines()]
    last = [e for e in steps if e["type"] == "step"][-1]["metrics"]
    levels = Counter(int(e["target"].split("_")[1]) for e in genotype["edges"] if e["op"] == TRANSFORMER)
    return {"experiment": "search", "sigma": sigma, "search_steps": search_steps,
            "memory_ratio": round(last["memory_ratio"], 3),
            "transformer_weight_by_level": [round(last[f"transformer_level_{d}"], 3) for d in (1, 2, 3)],
            "decoded_transformers_by_level": {str(k): levels.get(k, 0) for k in (1, 2, 3)},
            "decoded_cell_edges": sum(1 for e in genotype["edges"] if "op_weights" in e)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--search-steps", type=int, default=96)
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "dast" not in registry:  # until the registry line lands
        register(METHOD)
    for preset in ("paper", "tiny"):
        for sigma in SIGMAS:
            print(json.dumps(memory_term_only(preset, sigma)), flush=True)
    if args.skip_search:
        return
    root = args.out or Path(tempfile.mkdtemp(prefix="dast-sweep-"))
    data = api.make_demo_data(root / "demo", n_cases=4, shape=(32, 32, 32))
    for sigma in SIGMAS:
        print(json.dumps(search(sigma, data, root / f"sigma-{sigma}", args.search_steps)), flush=True)


if __name__ == "__main__":
    main()
