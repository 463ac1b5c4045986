"""What the gcs keeps for the cluster's metrics and dashboard (``ListState("metrics")``).

Nodes report their metrics on the heartbeat (``NodeHeartbeat.stats``, built by
``raylet/node_metrics.py``); the gcs keeps each node's latest report, the most recent
task failures (with tracebacks) and sandbox violations they carried, and measures the
latency of journaled steps itself, from a step's ``JournalBegin`` to its
``JournalCommit`` (the step's own run time included: what an agent waits for). Nothing
here is persisted: counters restart with the gcs, as Prometheus expects of a restart.
"""
from __future__ import annotations

import collections
import time

# Upper bounds (seconds) of the journal step latency histogram's buckets.
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_OPEN_STEPS = 10_000
MAX_RECENT = 200


class Monitor:
    def __init__(self):
        self.node_stats: dict[str, dict] = {}
        self.failures: collections.deque = collections.deque(maxlen=MAX_RECENT)
        self.violations: collections.deque = collections.deque(maxlen=MAX_RECENT)
        self.open_steps: dict = {}
        self.step_counts = [0] * (len(STEP_BUCKETS) + 1)  # the last one: +Inf
        self.step_sum = 0.0

    def on_stats(self, node_id: str, stats) -> None:
        if not isinstance(stats, dict):
            return
        self.failures.extend(stats.pop("failures", None) or ())
        self.violations.extend(stats.pop("violations", None) or ())
        self.node_stats[node_id] = stats

    def step_begin(self, msg) -> None:
        if len(self.open_steps) >= MAX_OPEN_STEPS:  # steps whose commit never came
            self.open_steps.pop(next(iter(self.open_steps)))
        self.open_steps.setdefault((msg.scope, msg.request, msg.seq), time.monotonic())

    def step_commit(self, msg) -> None:
        began = self.open_steps.pop((msg.scope, msg.request, msg.seq), None)
        if began is None:
            return
        seconds = time.monotonic() - began
        self.step_sum += seconds
        for i, bound in enumerate(STEP_BUCKETS):
            if seconds <= bound:
                self.step_counts[i] += 1
                break
        else:
            self.step_counts[-1] += 1

    def snapshot(self, nodes: list, actors: list) -> dict:
        by_state = collections.Counter(a.state for a in actors)
        return {
            "nodes": [{**n.info(), "stats": self.node_stats.get(n.node_id) if n.alive else None}
                      for n in nodes],
            "actors_by_state": dict(by_state),
            "failures": list(self.failures), "violations": list(self.violations),
            "journal_steps": {"buckets": list(STEP_BUCKETS), "counts": self.step_counts,
                              "sum": self.step_sum},
        }
