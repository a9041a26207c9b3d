"""The Celery candidate executor of C2FNAS with a real worker pool: two ``gpu`` workers train
candidates at the same time (overlapping intervals), the orchestration runs on a ``default``
worker, a gpu worker SIGKILLed mid-candidate is recovered (its candidate resumes from its own
checkpoint on another worker, appears once in the history, every event stored once) and the
search finishes."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasengine import api
from nasengine.events.sinks import read_events
from nasengine.methods.c2fnas import distributed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STALE_SECONDS = 6
SETTINGS = {"candidates": 4, "steps": 6, "checkpoint_every": 2, "fine_stage": False}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _worker(env, log: Path, name: str, queue: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queue, "--pool", "solo",
           "--concurrency", "1", "-n", f"{name}@%h", "--include", "webapp.runs.candidates",
           "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc


def _running_candidates(root: Path) -> list[tuple[Path, str]]:
    """Candidate folders with a checkpoint and no result yet, with their worker's name."""
    running = []
    for cand in sorted((root / "candidates").glob("*")):
        cid_prefix = cand.name.split("-", 1)[1]
        done = any(p.name.startswith(cid_prefix) for p in (root / "results").glob("*.json"))
        if not done and list((cand / "checkpoints").glob("*.pt")) and (cand / "owner").exists():
            running.append((cand, (cand / "owner").read_text()))
    return running


def _two_training_at_once(root: Path) -> list[tuple[Path, str]] | None:
    """Two candidates in training at the same moment on different workers, or None."""
    running = _running_candidates(root)
    return running if len({owner for _, owner in running}) >= 2 else None


def test_two_gpu_workers_overlap_and_a_killed_worker_loses_nothing(subprocess_env, tmp_path, wait_for):
    from celery import Celery

    demo = api.make_demo_data(tmp_path / "demo", n_cases=4, shape=(32, 32, 32))
    root = tmp_path / "search"
    distributed.start(root, demo, preset="tiny", overrides=SETTINGS, workers=2,
                      stale_seconds=STALE_SECONDS)
    prefix = f"{subprocess_env['REDIS_KEY_PREFIX']}c2fnas{id(root)}:"
    env = {**subprocess_env, "REDIS_KEY_PREFIX": prefix}
    sender = Celery("sender", broker=subprocess_env["REDIS_URL"], set_as_current=False)
    sender.conf.broker_transport_options = {"global_keyprefix": prefix}
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["orchestra"] = _worker(env, tmp_path / "orchestra.log", "orchestra", "default")
        procs["gpu1"] = _worker(env, tmp_path / "gpu1.log", "gpu1", "gpu")
        procs["gpu2"] = _worker(env, tmp_path / "gpu2.log", "gpu2", "gpu")
        sender.send_task("webapp.runs.candidates.c2fnas_advance", args=[str(root)], queue="default")
        # Both gpu workers train at once; the kill then hits one of them mid-candidate. (The
        # results alone cannot show the overlap: the killed attempt leaves no result.)
        running = wait_for(lambda: _two_training_at_once(root), 240)
        killed_dir, owner = running[0]
        victim = owner.split("@", 1)[0]
        procs[victim].kill()  # SIGKILL mid-candidate: the task is never acknowledged
        procs[victim].wait(timeout=10)
        procs["gpu3"] = _worker(env, tmp_path / "gpu3.log", "gpu3", "gpu")
        wait_for(lambda: (root / "genotype.json").exists(), 400)
    finally:
        logs = "".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("*.log"))
        for proc in procs.values():
            _stop(proc)
        sender.close()
    assert (root / "genotype.json").exists(), logs

    results = [json.loads(p.read_text()) for p in sorted((root / "results").glob("*.json"))]
    assert len(results) == SETTINGS["candidates"] and all(r["ok"] for r in results), logs

    events = read_events(root / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    finished = [e["candidate"] for e in events if e["type"] == "c2fnas.candidate_finished"]
    assert len(finished) == len(set(finished)) == SETTINGS["candidates"]
    assert events[-1]["type"] == "finished"

    killed = read_events(killed_dir / "events.jsonl")
    assert [e["seq"] for e in killed] == list(range(1, len(killed) + 1)), "an event stored twice"
    starts = [e for e in killed if e["type"] == "run_started"]
    assert len(starts) == 2 and starts[1]["resumed_from_step"] >= 2
    steps = [e["step"] for e in killed if e["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1)), "a step lost or repeated"
    killed_result = next(r for r in results if killed_dir.name.endswith(r["candidate_id"][:16]))
    assert not killed_result["details"]["worker"].startswith(victim + "@")
