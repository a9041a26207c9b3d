"""The registry of connected workers: each Celery worker says what device it computes on and how
much memory that device has free, when it starts and then every ``REPORT_EVERY`` seconds.

Kept in Redis (the broker the workers already need), one key per worker with a time to live of
``TTL_SECONDS``: a worker that dies (killed, out of memory, host down) drops out of the registry
on its own within that time, with nothing to clean up. A clean shutdown deletes its key at once.

What it is for (issue 14 item 9, issue 13 item 2):

* the launch refuses a run whose memory estimate fits no connected ``gpu``-queue worker, with
  the numbers (``memory_bound``); a client's own budget can only lower that bound;
* the launch form's default preset follows whether a CUDA worker is up (``gpu_worker_up``).

Choice: a worker without CUDA (CPU-only machines, the tests) reports ``cpu`` and the memory
the operating system says is available to a new process (``MemAvailable``), since that is what
a run on that worker can use; a CUDA worker reports ``torch.cuda.mem_get_info`` of its device.
"""
from __future__ import annotations

import json
import logging
import threading
import time

log = logging.getLogger(__name__)

#: A worker that has not reported for this long is taken to be gone.
TTL_SECONDS = 60
#: How often a running worker reports again (well inside the TTL).
REPORT_EVERY = 20
KEY = "voxelsearch:worker:"


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _key(hostname: str) -> str:
    from django.conf import settings

    return f"{getattr(settings, 'REDIS_KEY_PREFIX', '')}{KEY}{hostname}"


def device_report() -> dict:
    """This process's compute device and its memory: ``device`` (``cuda:0`` or ``cpu``),
    ``device_name``, ``total_bytes``, ``free_bytes``."""
    try:
        import torch

        if torch.cuda.is_available():
            index = torch.cuda.current_device()
            free, total = torch.cuda.mem_get_info(index)
            return {"device": f"cuda:{index}", "device_name": torch.cuda.get_device_name(index),
                    "total_bytes": int(total), "free_bytes": int(free)}
    except Exception:  # a broken CUDA set-up is reported as the CPU it falls back to
        log.warning("Could not read the CUDA device; reporting the CPU", exc_info=True)
    import psutil

    memory = psutil.virtual_memory()
    return {"device": "cpu", "device_name": "CPU", "total_bytes": int(memory.total), "free_bytes": int(memory.available)}


def report(hostname: str, queues: list[str]) -> dict:
    """Store this worker's report under its key with a fresh TTL; returns the report."""
    entry = {"hostname": hostname, "queues": sorted(queues), "reported_at": time.time(), **device_report()}
    _redis().set(_key(hostname), json.dumps(entry), ex=TTL_SECONDS)
    return entry


def forget(hostname: str) -> None:
    _redis().delete(_key(hostname))


def connected_workers() -> list[dict]:
    """The reports of the workers that reported within the TTL (none when Redis is down: then
    nothing is known and nothing is refused on the registry's account)."""
    from django.conf import settings

    pattern = f"{getattr(settings, 'REDIS_KEY_PREFIX', '')}{KEY}*"
    try:
        client = _redis()
        keys = list(client.scan_iter(match=pattern, count=200))
        values = client.mget(keys) if keys else []
    except Exception:
        log.warning("The worker registry (Redis) is not reachable", exc_info=True)
        return []
    workers = []
    for value in values:
        try:
            workers.append(json.loads(value))
        except (TypeError, ValueError):
            continue
    return sorted(workers, key=lambda w: w.get("hostname", ""))


def gpu_queue_workers(workers: list[dict] | None = None) -> list[dict]:
    """Connected workers that take runs (the ``gpu`` queue)."""
    workers = connected_workers() if workers is None else workers
    return [w for w in workers if "gpu" in (w.get("queues") or [])]


def gpu_worker_up(workers: list[dict] | None = None) -> bool:
    """True when a worker of the ``gpu`` queue computes on CUDA."""
    return any(str(w.get("device", "")).startswith("cuda") for w in gpu_queue_workers(workers))


def memory_bound(workers: list[dict] | None = None) -> dict | None:
    """The most free memory of any connected run worker: ``{"bytes", "hostname", "device"}``, or
    None when no run worker has reported (then the launch is queued and waits for one)."""
    best = max(gpu_queue_workers(workers), key=lambda w: int(w.get("free_bytes") or 0), default=None)
    if best is None:
        return None
    return {"bytes": int(best.get("free_bytes") or 0), "hostname": best.get("hostname", ""), "device": best.get("device", "")}


# ------------------------------------------------------------------ Celery signal handlers

class _Reporter(threading.Thread):
    """Reports again every REPORT_EVERY seconds while the worker runs (the TTL heartbeat)."""

    def __init__(self, hostname: str, queues: list[str]):
        super().__init__(name="worker-registry", daemon=True)
        self.hostname, self.queues = hostname, queues
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(REPORT_EVERY):
            try:
                report(self.hostname, self.queues)
            except Exception:
                log.warning("Could not report this worker to the registry", exc_info=True)


_reporter: _Reporter | None = None


def _queues_of(consumer) -> list[str]:
    try:
        return [q.name for q in consumer.task_consumer.queues]
    except Exception:
        try:
            return list(consumer.app.amqp.queues.consume_from)
        except Exception:
            return []


def connect_signals() -> None:
    """Hook the registry into Celery's worker signals (called by ``webapp.celery``)."""
    from celery.signals import worker_ready, worker_shutdown

    worker_ready.connect(on_worker_ready, weak=False, dispatch_uid="voxelsearch-worker-registry-ready")
    worker_shutdown.connect(on_worker_shutdown, weak=False, dispatch_uid="voxelsearch-worker-registry-shutdown")


def on_worker_ready(sender=None, **kwargs):
    global _reporter
    try:
        hostname = getattr(sender, "hostname", None) or "worker"
        queues = _queues_of(sender)
        entry = report(hostname, queues)
        log.info("Worker %s reports %s (%s) with %.2f GB free", hostname, entry["device"], entry["device_name"],
                 entry["free_bytes"] / 1e9)
        _reporter = _Reporter(hostname, queues)
        _reporter.start()
    except Exception:  # never keep a worker from starting
        log.exception("Could not report this worker to the registry")


def on_worker_shutdown(sender=None, **kwargs):
    try:
        if _reporter is not None:
            _reporter.stopped.set()
            forget(_reporter.hostname)
    except Exception:
        log.warning("Could not remove this worker from the registry", exc_info=True)
