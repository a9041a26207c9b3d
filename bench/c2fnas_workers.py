"""Benchmark: the same tiny C2FNAS coarse search with 1 and with 2 Celery ``gpu`` workers on
this machine (issue 10).

Each run starts its own workers (one ``default`` worker for the orchestration, N ``gpu``
workers with one CPU thread each, so that candidates are CPU-bound on separate cores) under a
private Redis key prefix, sends the first ``advance`` and waits for the coarse stage to end
(``fine_stage`` off: the fine stage runs on one worker and would only dilute the comparison).
Printed per run:

- candidates per hour (candidates / wall time from the first submit to the last result);
- speed-up of 2 workers over 1;
- orchestration overhead per candidate: from a candidate's completion (its result written) to
  the next submit it woke (the ``c2fnas.candidate_submitted`` event), as a share of the mean
  candidate time.

Targets: speed-up >= 1.8x with 2 workers when each candidate owns a core (this machine has
``os.cpu_count()`` cores, shared with whatever else runs); overhead < 1 % of a candidate.

Usage::

    python bench/c2fnas_workers.py                    # 8 candidates of 1 + 100 steps
    python bench/c2fnas_workers.py --candidates 8 --steps 20
Needs Redis (``REDIS_URL``, default redis://127.0.0.1:6379/0).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def start_worker(env: dict, log: Path, name: str, queue: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queue, "--pool", "solo",
           "--concurrency", "1", "-n", f"{name}@%h", "--include", "webapp.runs.candidates",
           "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    out = open(log, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker {name} did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.3)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(workers: int, demo: Path, work: Path, settings: dict, redis_url: str) -> dict:
    from celery import Celery

    from nasengine.events.sinks import read_events
    from nasengine.methods.c2fnas import distributed

    root = work / f"search-{workers}"
    distributed.start(root, demo, preset="tiny", overrides=settings, workers=workers,
                      stale_seconds=600)
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    procs = [start_worker(env, work / f"orch-{workers}.log", f"orch{workers}", "default")]
    procs += [start_worker(env, work / f"gpu{workers}-{i}.log", f"gpu{workers}-{i}", "gpu")
              for i in range(workers)]
    sender = Celery("bench", broker=redis_url, set_as_current=False)
    sender.conf.broker_transport_options = {"global_keyprefix": prefix}
    try:
        sender.send_task("webapp.runs.candidates.c2fnas_advance", args=[str(root)], queue="default")
        deadline = time.monotonic() + 3600
        while not (root / "finish_sent").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the search did not finish within an hour")
            time.sleep(0.5)
        time.sleep(2.0)  # the last advance writes its events
    finally:
        for p in procs:
            stop(p)
        sender.close()
    results = [json.loads(p.read_text()) for p in (root / "results").glob("*.json")]
    events = read_events(root / "events.jsonl")
    submits = sorted(e["time"] for e in events if e["type"] == "c2fnas.candidate_submitted")
    ends = sorted(r["details"]["ended"] for r in results)
    durations = [r["details"]["ended"] - r["details"]["started"] for r in results]
    # each submit after the initial fill was woken by the latest completion before it
    overheads = []
    for t in submits[workers:]:
        before = [e for e in ends if e <= t]
        if before:
            overheads.append(t - before[-1])
    wall = ends[-1] - submits[0]
    return {"workers": workers, "candidates": len(results), "wall_s": wall,
            "candidates_per_hour": 3600 * len(results) / wall,
            "mean_candidate_s": statistics.mean(durations),
            "overhead_s": statistics.mean(overheads) if overheads else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from nasengine import api

    # 6 cells with 2 downs and 2 ups: C(6, 4) = 15 topologies, enough for the candidates
    settings = {"candidates": args.candidates, "steps": args.steps, "checkpoint_every": 0,
                "fine_stage": False, "num_cells": 6, "clusters": 2}
    with tempfile.TemporaryDirectory(prefix="c2fnas-bench-") as tmp:
        work = Path(tmp)
        demo = api.make_demo_data(work / "demo", n_cases=4, shape=(32, 32, 32))
        rows = [run(n, demo, work, settings, args.redis) for n in (1, 2)]
    print(f"cores: {os.cpu_count()}  candidates: {args.candidates} x {1 + args.steps} steps (tiny, 32^3)")
    print(f"{'workers':>7} {'cand/h':>8} {'wall s':>8} {'cand s':>8} {'overhead s':>11} {'overhead %':>10}")
    for r in rows:
        print(f"{r['workers']:>7} {r['candidates_per_hour']:>8.0f} {r['wall_s']:>8.1f} "
              f"{r['mean_candidate_s']:>8.2f} {r['overhead_s']:>11.3f} "
              f"{100 * r['overhead_s'] / r['mean_candidate_s']:>10.2f}")
    print(f"speed-up with 2 workers: {rows[1]['candidates_per_hour'] / rows[0]['candidates_per_hour']:.2f}x")


if __name__ == "__main__":
    main()
