"""What a node reports about itself for the cluster's metrics and dashboard.

Every process of the node sends its counts at most once a second (``MetricsReport``,
from ``actorium/core/stats.py``); the raylet adds them up here with what it sees itself
(sandbox starts and violations, queue lengths, the object store, the machine's CPU and
memory) and sends the whole as ``NodeHeartbeat.stats`` once a second: the heartbeat
the gcs already receives, not a second channel. Totals are cumulative since the node
started (Prometheus counters); failures and violations travel once each, as they
happen, and the gcs keeps the most recent.
"""
from __future__ import annotations

import collections
import time

import psutil

from actorium.core import stats as core_stats

MAX_KINDS = 20           # distinct sandbox violation kinds kept as labels
MAX_EVENTS = 50          # failures / violations held between two heartbeats


class NodeMetrics:
    def __init__(self, raylet):
        self.raylet = raylet
        self.tasks = {"submitted": {}, "finished": {}, "failed": {}}
        self.http: dict = {}
        self.sandbox_starts = 0
        self.violations: dict = {}
        self.new_failures: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self.new_violations: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        psutil.cpu_percent(None)  # primes the counter: the next call measures since now

    # -- inputs -----------------------------------------------------------------------
    def on_report(self, identity, msg) -> None:
        delta = msg.delta if isinstance(msg.delta, dict) else {}
        for kind, table in self.tasks.items():
            _add(table, delta.get(kind), core_stats.MAX_NAMES)
        _add(self.http, delta.get("http"), 100)
        for failure in delta.get("failures") or ():
            if isinstance(failure, dict):
                failure["node_id"] = self.raylet.node_id
                self.new_failures.append(failure)

    def sandbox_started(self) -> None:
        self.sandbox_starts += 1

    def sandbox_violation(self, kind, where: str) -> None:
        kind = str(kind)[:32]
        if kind not in self.violations and len(self.violations) >= MAX_KINDS:
            kind = "other"
        self.violations[kind] = self.violations.get(kind, 0) + 1
        self.new_violations.append({"kind": kind, "where": where, "time": time.time(),
                                    "node_id": self.raylet.node_id})

    # -- output -----------------------------------------------------------------------
    def snapshot(self) -> dict:
        r = self.raylet
        mem = psutil.virtual_memory()
        out = {
            "time": time.time(),
            "cpu_percent": psutil.cpu_percent(None), "cpu_count": psutil.cpu_count() or 1,
            "memory_total": mem.total, "memory_used": mem.total - mem.available,
            "workers": dict(collections.Counter(w.state for w in r.workers.values())),
            "pending_leases": len(r.requests), "pending_actors": len(r.pending_actors),
            "store": r.store.usage() if r.store is not None else {},
            "tasks": self.tasks, "http": self.http,
            "sandbox": {"starts": self.sandbox_starts, "violations": self.violations},
            "failures": list(self.new_failures), "violations": list(self.new_violations),
        }
        self.new_failures.clear()
        self.new_violations.clear()
        return out


def _add(total: dict, delta, limit: int) -> None:
    if not isinstance(delta, dict):
        return
    for name, n in delta.items():
        if not isinstance(n, int):
            continue
        name = str(name)
        if name not in total and len(total) >= limit:
            name = "other"
        total[name] = total.get(name, 0) + n
