"""Counters a process keeps for the cluster's metrics, shipped in batches.

The owner's I/O thread counts each call it submits and finishes (``TaskTable`` and
``CoreWorker.complete`` run there, so the counts need no lock); the executor records
recent failures with their tracebacks; an HTTP ingress counts its responses. Nothing is
sent per call: once a second the core worker takes what changed (``take``) and sends
one ``MetricsReport`` to its raylet, which adds it to the node's totals reported to
the gcs with the heartbeat. The cost on the per-call path is one dict increment.

Names are labels of Prometheus series, so their number is bounded (``MAX_NAMES``);
calls beyond that are counted under ``"other"``.
"""
from __future__ import annotations

import collections
import os
import threading
import time

# ACTORIUM_METRICS=0 turns the counting off (for measuring what it costs).
ENABLED = os.environ.get("ACTORIUM_METRICS", "1") != "0"
MAX_NAMES = 200
MAX_FAILURES = 20        # failures kept per report interval (the rest are only counted)
MAX_TRACEBACK = 8192     # characters of a failure's traceback kept

submitted: dict = {}
finished: dict = {}
failed: dict = {}
http: dict = {}
failures: collections.deque = collections.deque(maxlen=MAX_FAILURES)
_http_lock = threading.Lock()


def count(table: dict, name: str) -> None:
    """One more call of ``name`` (I/O thread only)."""
    if not ENABLED:
        return
    n = table.get(name)
    if n is None:
        if len(table) >= MAX_NAMES:
            name = "other"
            n = table.get(name, 0)
        else:
            n = 0
    table[name] = n + 1


def record_http(status: int) -> None:
    """The hook an HTTP ingress feeds: one response with this status code."""
    key = str(int(status))
    with _http_lock:
        http[key] = http.get(key, 0) + 1


def record_failure(name: str, task_id: bytes, error: str, pid: int, actor: str = "") -> None:
    """A call that raised, with its traceback text (any thread: a deque append)."""
    failures.append({"name": name, "task_id": task_id.hex(), "error": error[-MAX_TRACEBACK:],
                     "pid": pid, "actor": actor, "time": time.time()})


def take() -> dict | None:
    """What changed since the last ``take`` (I/O thread), or None when nothing did."""
    global submitted, finished, failed, http
    if not (submitted or finished or failed or http or failures):
        return None
    out = {"submitted": submitted, "finished": finished, "failed": failed}
    submitted, finished, failed = {}, {}, {}
    with _http_lock:
        out["http"], http = http, {}
    out["failures"] = [failures.popleft() for _ in range(len(failures))]
    return out
