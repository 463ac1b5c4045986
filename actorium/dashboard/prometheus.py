"""``/metrics``: the cluster's metrics in Prometheus's text format, from the gcs's
``ListState("metrics")`` (every node's heartbeat report, summed where a per-node label
would add nothing).

Labels are bounded: call names (at most ``core.stats.MAX_NAMES`` per node, then
"other"), actor and worker states, HTTP status codes, sandbox violation kinds, and
``node``, the node's position in the gcs's node table (0 is the first to register,
normally the head) rather than its id; ``actorium_node_info`` maps it to the host.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot:
    """A prometheus_client collector over one gcs metrics snapshot."""

    def __init__(self, metrics: dict):
        self.metrics = metrics

    def collect(self):
        m = self.metrics
        tasks = {k: CounterMetricFamily(f"actorium_tasks_{k}", f"Tasks and actor calls {k}, "
                                        "by function or Class.method", labels=["name"])
                 for k in ("submitted", "finished", "failed")}
        sums: dict = {k: {} for k in tasks}
        http: dict = {}
        info = GaugeMetricFamily("actorium_node_info", "A node of the cluster (1 when alive)",
                                 labels=["node", "host", "head"])
        cpu = GaugeMetricFamily("actorium_node_cpu_percent", "Node CPU use, percent of all "
                                "cores", labels=["node"])
        mem = GaugeMetricFamily("actorium_node_memory_bytes", "Node memory", labels=["node", "kind"])
        queue = GaugeMetricFamily("actorium_lease_queue_length", "Worker lease requests "
                                  "waiting at the node's raylet", labels=["node"])
        pending_actors = GaugeMetricFamily("actorium_pending_actors", "Actors waiting for "
                                           "resources at the node", labels=["node"])
        workers = GaugeMetricFamily("actorium_workers", "Worker processes by state",
                                    labels=["node", "state"])
        store = GaugeMetricFamily("actorium_object_store_bytes", "Object store bytes",
                                  labels=["node", "kind"])
        objects = GaugeMetricFamily("actorium_object_store_objects", "Objects in the store "
                                    "(kind=spilled: of them, on disk)", labels=["node", "kind"])
        starts = CounterMetricFamily("actorium_sandbox_starts", "Sandboxes started (one-shot "
                                     "runs and sandboxed actors)", labels=["node"])
        violations = CounterMetricFamily("actorium_sandbox_violations", "Sandbox limit or "
                                         "policy violations", labels=["kind"])
        vsum: dict = {}
        for index, n in enumerate(m.get("nodes", ())):
            node = str(index)
            info.add_metric([node, n.get("host") or "local", str(bool(n.get("head"))).lower()],
                            1 if n.get("alive") else 0)
            st = n.get("stats")
            if not st:
                continue
            for kind, table in (st.get("tasks") or {}).items():
                for name, count in table.items():
                    sums[kind][name] = sums[kind].get(name, 0) + count
            for status, count in (st.get("http") or {}).items():
                http[status] = http.get(status, 0) + count
            cpu.add_metric([node], st.get("cpu_percent", 0.0))
            mem.add_metric([node, "used"], st.get("memory_used", 0))
            mem.add_metric([node, "total"], st.get("memory_total", 0))
            queue.add_metric([node], st.get("pending_leases", 0))
            pending_actors.add_metric([node], st.get("pending_actors", 0))
            for state, count in (st.get("workers") or {}).items():
                workers.add_metric([node, state], count)
            s = st.get("store") or {}
            for kind in ("used", "capacity", "spilled"):
                store.add_metric([node, kind], s.get(kind, 0))
            objects.add_metric([node, "all"], s.get("num_objects", 0))
            objects.add_metric([node, "spilled"], s.get("num_spilled", 0))
            sb = st.get("sandbox") or {}
            starts.add_metric([node], sb.get("starts", 0))
            for kind, count in (sb.get("violations") or {}).items():
                vsum[kind] = vsum.get(kind, 0) + count
        for kind, family in tasks.items():
            for name, count in sorted(sums[kind].items()):
                family.add_metric([name], count)
            yield family
        actors = GaugeMetricFamily("actorium_actors", "Actors by state", labels=["state"])
        for state in ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"):
            actors.add_metric([state], (m.get("actors_by_state") or {}).get(state, 0))
        yield actors
        for kind, count in sorted(vsum.items()):
            violations.add_metric([kind], count)
        requests = CounterMetricFamily("actorium_http_requests", "HTTP requests answered by "
                                       "an ingress, by status code", labels=["status"])
        for status, count in sorted(http.items()):
            requests.add_metric([status], count)
        steps = m.get("journal_steps") or {}
        bounds, counts = steps.get("buckets", []), steps.get("counts", [])
        buckets, running = [], 0
        for bound, count in zip([*map(str, bounds), "+Inf"], counts):
            running += count
            buckets.append((bound, running))
        histogram = HistogramMetricFamily(
            "actorium_journal_step_seconds", "Journaled durable steps, from intent to "
            "committed result", buckets=buckets or [("+Inf", 0)], sum_value=steps.get("sum", 0.0))
        yield from (info, cpu, mem, queue, pending_actors, workers, store, objects, starts,
                    violations, requests, histogram)


def render(metrics: dict) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    return generate_latest(registry)
