"""Live run events, worker to browser (issue 13's benchmark).

Starts the real servers on a private database and Redis prefix: the ASGI app under uvicorn (as
scripts/run-demo and docker/ serve it; ``--server daphne`` for the old one, or both), Redis as
the channel layer. Worker-side threads store and broadcast events through the web app's own sink
(``webapp.runs.events.RunEventSink``, what a Celery worker runs); WebSocket clients (the
``websockets`` package, as a browser speaks it) subscribe to the runs' sockets.

Measures:

1. latency = receive time - the event's own ``time`` (stamped by the worker before it is
   stored), p50 / p95 / p99 / max, with 1 run and 1 socket, then 10 runs emitting at once and
   50 sockets (5 per run);
2. the bytes a run page downloads on a reconnect after 1,000 steps: ``GET /api/runs/<id>/events
   ?after=0`` as before (whole snapshots, no gzip), as now (snapshots as changes, gzip), and
   the socket's replay, with and without permessage-deflate (as the server negotiates it).

Reference (issue 13, daphne, before): 1 run p95 10.9 ms; the events response 1.28 MB for 870
events. Targets: p95 <= 20 ms under the 10-run load; a reconnect after 1,000 steps < 100 KB.

    .venv/bin/python bench/live_events.py                 # uvicorn, 300 events per run
    .venv/bin/python bench/live_events.py --server both --events 200 --rate 10

PostgreSQL (127.0.0.1:5432, a database made and dropped here) when it answers, else SQLite.
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PREFIX = f"vsbench{os.getpid()}:"
SECRET = "bench-" + uuid.uuid4().hex
TOKEN = "bench-worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_url() -> str | None:
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as c:
            name = f"vsbench_{os.getpid()}"
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:5432/{name}"
    except Exception:
        return None


def _drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        c.execute(f"DROP DATABASE IF EXISTS {name}")


def setup_environment(media: Path) -> tuple[dict, str]:
    database = _postgres_url() or f"sqlite:///{media / 'bench.sqlite3'}"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="webapp.settings", DATABASE_URL=database, MEDIA_ROOT=str(media),
               REDIS_KEY_PREFIX=PREFIX, SECRET_KEY=SECRET, PYTHONUNBUFFERED="1", VOXELSEARCH_FAST_PASSWORD_HASHER="1")
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT", "REDIS_KEY_PREFIX",
                                           "SECRET_KEY")})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    import django

    django.setup()
    return env, database


def start_server(kind: str, env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    if kind == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
               "--no-access-log", "--timeout-graceful-shutdown", "3", "webapp.asgi:application"]
    else:
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} did not start: {log.read_text()[-2000:]}")


def make_runs(n: int):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from webapp.datasets.models import Dataset
    from webapp.projects.services import project_create
    from webapp.runs.models import Run

    user = get_user_model().objects.create_user(username=f"bench{uuid.uuid4().hex[:6]}", password="pw-bench-1")
    project = project_create(user=user, name="Bench")
    dataset = Dataset.objects.create(project=project, name="D", source="files", status=Dataset.Status.READY,
                                     labels={"0": "background", "1": "a"})
    runs = []
    for _ in range(n):
        run = Run.objects.create(project=project, dataset=dataset, kind="search", method="dints", preset="tiny",
                                 config={}, resolved_config={}, gpu_budget_bytes=8 * 10**9, estimate_bytes=10**9)
        run.transition("running")
        Run.objects.filter(pk=run.pk).update(claim_token=TOKEN)
        runs.append(run.pk)
    client = Client()
    client.force_login(user)
    return runs, client.cookies["sessionid"].value


def step_event(seq: int, step: int, total: int) -> dict:
    return {"seq": seq, "type": "step", "time": time.time(), "step": step, "total_steps": total,
            "progress": step / total, "phase": "search", "losses": {"seg": 0.5, "arch": 0.25}, "lrs": {"weights": 0.025},
            "metrics": {}, "memory_bytes": 6 * 10**8, "memory_kind": "rss", "seconds": 0.3}


def emit_events(run_id: int, count: int, rate: float, start_seq: int = 0) -> None:
    """What a worker does: each event stored and broadcast by the sink, ``rate`` per second."""
    from django.db import connection

    from webapp.runs.events import RunEventSink

    sink = RunEventSink(run_id, TOKEN)
    try:
        for i in range(1, count + 1):
            due = time.monotonic() + 1 / rate
            sink(step_event(start_seq + i, start_seq + i, start_seq + count))
            time.sleep(max(0.0, due - time.monotonic()))
    finally:
        connection.close()


async def listen(url: str, cookie: str, expect: int, latencies: list[float], ready: asyncio.Event | None = None,
                 compression: str | None = None) -> dict:
    import websockets

    got, replay_bytes = 0, 0
    async with websockets.connect(url, additional_headers={"Cookie": f"sessionid={cookie}"},
                                  origin=url.replace("ws://", "http://").split("/ws/")[0],
                                  compression=compression, max_size=None) as ws:
        deflate = "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        await ws.send(json.dumps({"after": 0}))
        replayed = False
        while got < expect or not replayed:
            raw = await asyncio.wait_for(ws.recv(), timeout=180)
            now = time.time()
            message = json.loads(raw)
            if not replayed:
                replay_bytes += len(raw)
            if message["kind"] == "replayed":
                replayed = True
                if ready is not None:
                    ready.set()
            elif message["kind"] == "event":
                got += 1
                if replayed:
                    latencies.append(1000 * (now - message["event"]["time"]))
    return {"deflate": deflate, "replay_bytes": replay_bytes}


def measure_latency(ws_base: str, cookie: str, runs: list[int], sockets_per_run: int, count: int, rate: float) -> list[float]:
    latencies: list[float] = []

    async def main():
        readies = []
        tasks = []
        for run_id in runs:
            for _ in range(sockets_per_run):
                ready = asyncio.Event()
                readies.append(ready)
                tasks.append(asyncio.create_task(listen(f"{ws_base}/ws/runs/{run_id}/", cookie, count, latencies, ready)))
                await asyncio.sleep(0.05)  # open the sockets as pages do, not in one burst
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 180)
        workers = [threading.Thread(target=emit_events, args=(run_id, count, rate)) for run_id in runs]
        for w in workers:
            w.start()
        await asyncio.gather(*tasks)
        for w in workers:
            w.join()

    asyncio.run(main())
    return latencies


def stats(values: list[float]) -> str:
    if not values:
        return "no data"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"{len(values):6d} {statistics.median(values):7.1f} {q[94]:7.1f} {q[98]:7.1f} {max(values):7.1f}"


# ------------------------------------------------------------------ reconnect bytes

def search_stream(steps: int) -> list[dict]:
    """A DiNTS tiny search's events (as tests/webapp/test_runs_snapshot_support.py makes them)."""
    import torch

    from nasengine.methods import get_method
    from nasengine.training.common import compact_genotype

    torch.manual_seed(0)
    method = get_method("dints")
    network = method.build_supernet(method.make_config("tiny", {}), 1, 3)
    arch = list(network.arch_parameters())
    optimiser = torch.optim.Adam(arch, lr=0.008)
    events: list[dict] = []

    def emit(kind, **payload):
        events.append({"seq": len(events) + 1, "type": kind, "time": time.time(), **payload})

    emit("run_started", phase="search", total_steps=steps, device="cpu", resumed_from_step=None)
    emit("architecture", step=0, genotype=compact_genotype(network.snapshot()))
    for step in range(1, steps + 1):
        for p in arch:
            p.grad = torch.randn_like(p) * 0.1
        optimiser.step()
        emit("step", step=step, total_steps=steps, progress=step / steps, phase="search",
             losses={k: float(torch.rand(1)) for k in ("seg", "arch", "entropy")}, lrs={"weights": 0.025, "arch": 0.008},
             metrics={}, memory_bytes=6 * 10**8 + step, memory_kind="rss", seconds=0.3 + float(torch.rand(1)) / 100,
             reg_scales=None)
        if step % 4 == 0:
            emit("architecture", step=step, genotype=compact_genotype(network.snapshot()))
        if step % 12 == 0:
            emit("validation", step=step, dice={"a": 0.5}, mean_dice=0.5)
            emit("checkpoint", step=step, path="checkpoints/checkpoint.pt")
    return events


class CountingProxy:
    """A TCP forwarder to the server that counts the bytes the server sends back (what crosses
    the network, after any compression), in a thread of its own."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = _free_port()
        self.received = 0
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    def _run(self, started):
        asyncio.set_event_loop(self.loop)

        async def pipe(reader, writer, count):
            try:
                while data := await reader.read(65536):
                    if count:
                        self.received += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(client_reader, client_writer):
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(pipe(client_reader, server_writer, False), pipe(server_reader, client_writer, True))

        async def serve():
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            started.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(serve())

    def measure(self, action) -> int:
        self.received = 0
        action()
        time.sleep(0.3)  # let the last bytes be counted
        return self.received


def reconnect_bytes(server_port: int, cookie: str, run_id: int, steps: int) -> list[tuple[str, int, int]]:
    import urllib.request

    proxy = CountingProxy(server_port)
    base, ws_base = f"http://127.0.0.1:{proxy.port}", f"ws://127.0.0.1:{proxy.port}"
    from webapp.runs.models import RunEvent

    stream = search_stream(steps)
    RunEvent.objects.bulk_create([RunEvent(run_id=run_id, seq=e["seq"], type=e["type"], time=e["time"],
                                           payload={k: v for k, v in e.items() if k not in ("seq", "type", "time")})
                                  for e in stream])
    before = json.dumps({"events": stream}, separators=(",", ":")).encode()  # the old response: whole snapshots

    def get(encoding: str | None) -> int:
        headers = {"Cookie": f"sessionid={cookie}"}
        if encoding:
            headers["Accept-Encoding"] = encoding
        request = urllib.request.Request(f"{base}/api/runs/{run_id}/events?after=0&limit=5000", headers=headers)

        def fetch():
            with urllib.request.urlopen(request) as response:
                response.read()

        return proxy.measure(fetch)

    rows = [("GET events, before (whole snapshots, identity)", len(stream), len(before)),
            ("GET events, before, had it been gzipped", len(stream), len(gzip.compress(before))),
            ("GET events, now (identity)", len(stream), get(None)),
            ("GET events, now (gzip)", len(stream), get("gzip"))]
    for compression in (None, "deflate"):
        info = {}

        def replay():
            info.update(asyncio.run(listen(f"{ws_base}/ws/runs/{run_id}/", cookie, len(stream), [], compression=compression)))

        wire = proxy.measure(replay)
        label = "socket replay, permessage-deflate " + ("negotiated" if info["deflate"] else
                                                        ("refused by the server" if compression else "not asked"))
        rows.append((label, len(stream), wire))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["uvicorn", "daphne", "both"], default="uvicorn")
    parser.add_argument("--events", type=int, default=300, help="events per run in each latency test")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second per run")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the run replayed on reconnect")
    args = parser.parse_args()

    media = Path(tempfile.mkdtemp(prefix="vsbench-media-"))
    env, database = setup_environment(media)
    servers = ["uvicorn", "daphne"] if args.server == "both" else [args.server]
    print(f"database: {database.split('://')[0]}; load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"\nLatency, worker to socket (ms): receive time - event time; {args.events} events per run at {args.rate:g}/s")
    print(f"{'server':8} {'load':28} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    print(f"{'daphne':8} {'1 run, 1 socket (issue 13)':28} {'':>6} {'':>7} {'10.9':>7}", flush=True)
    byte_tables = []
    try:
        for kind in servers:
            proc, port = start_server(kind, env, media / f"{kind}.log")
            try:
                ws_base = f"ws://127.0.0.1:{port}"
                runs, cookie = make_runs(12)
                for label, chosen, per_run in (("1 run, 1 socket", runs[:1], 1), ("10 runs at once, 50 sockets", runs[1:11], 5)):
                    try:
                        print(f"{kind:8} {label:28} {stats(measure_latency(ws_base, cookie, chosen, per_run, args.events, args.rate))}",
                              flush=True)
                    except Exception as exc:  # a server that cannot keep up: say so, go on
                        print(f"{kind:8} {label:28} failed: {type(exc).__name__} {str(exc)[:80]}", flush=True)
                byte_tables.append((kind, reconnect_bytes(port, cookie, runs[11], args.steps)))
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:  # a connection the proxy kept open
                    proc.kill()
                    proc.wait(timeout=5)
    finally:
        if database.startswith("postgresql"):
            _drop_postgres(database)
        try:
            import redis

            client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            keys = list(client.scan_iter(match=f"{PREFIX}*"))
            if keys:
                client.delete(*keys)
        except Exception:
            pass
        import shutil

        shutil.rmtree(media, ignore_errors=True)

    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for kind, rows in byte_tables:
        print(f"\nReconnect after {args.steps} steps ({kind}): bytes a run page downloads")
        print(f"{'what (bytes on the wire, headers included)':62} {'events':>7} {'KB':>9}")
        print(f"{'issue 13 (870 events, before)':62} {870:7d} {1280:9.0f}")
        for label, n, size in rows:
            print(f"{label:62} {n:7d} {size / 1024:9.1f}")


if __name__ == "__main__":
    main()
