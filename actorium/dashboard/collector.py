"""What the dashboard shows, asked of the gcs and the raylets (the same messages the
``actorium status``/``list`` commands use), kept as one JSON snapshot.

The HTTP server is single-threaded (``server.py``), so every ZeroMQ socket here is used
from the one thread that made it. The snapshot is rebuilt at most every ``MAX_AGE``
seconds however many browsers poll, so a page load costs one cached read.
"""
from __future__ import annotations

import json
import time

import msgpack

from actorium.core.objects import serialization
from actorium.core.wire import protocol, transport

MAX_AGE = 0.5
RPC_TIMEOUT = 3.0
MAX_EVENTS = 500


class Collector:
    def __init__(self, gcs_addr: str, session_dir: str):
        self.gcs = gcs_addr
        self.session_dir = session_dir
        self.metrics: dict = {}
        self.snapshot: dict = {}
        self.body = b"{}"
        self.built = 0.0

    def _gcs(self, what: str):
        return transport.rpc(self.gcs, protocol.ListState(transport.next_req_id(), what),
                             timeout=RPC_TIMEOUT, what="the gcs")

    def refresh(self) -> None:
        if time.monotonic() - self.built < MAX_AGE:
            return
        metrics = self._gcs("metrics")
        actors = self._gcs("actors")
        sessions = self._gcs("sessions")
        self.metrics = metrics
        self.snapshot = build(metrics, actors, sessions, self.session_dir)
        self.body = json.dumps(self.snapshot, default=str).encode()
        self.built = time.monotonic()

    # -- on demand ------------------------------------------------------------------
    def raylet_of(self, node_id: str) -> str:
        for n in self.metrics.get("nodes", ()):
            if n["node_id"] == node_id and n.get("alive"):
                return n["raylet_addr"]
        raise LookupError(f"no live node {node_id!r}")

    def read_log(self, node_id: str, file: str, offset: int, length: int, task: str = ""):
        self.refresh()
        value = transport.rpc(self.raylet_of(node_id), protocol.ReadLog(
            transport.next_req_id(), file, offset, length, task), timeout=RPC_TIMEOUT,
            what="a raylet")
        if isinstance(value, dict):
            value = dict(value, data=value["data"].decode("utf-8", "replace"))
        return value

    def events(self, key: str, start: int) -> list:
        blobs = transport.rpc(self.gcs, protocol.EventRange(
            transport.next_req_id(), key, max(0, start), max(0, start) + MAX_EVENTS),
            timeout=RPC_TIMEOUT, what="the gcs")
        return [_event(b) for b in blobs]


def _event(blob: bytes):
    """One session event as plain JSON-able data (events are written by cluster
    processes, so they are decoded like any value; what is not plain data is shown as
    its repr)."""
    try:
        value = serialization.deserialize(blob)
    except Exception as exc:
        return {"undecodable": f"{type(exc).__name__}: {exc}"}
    return json.loads(json.dumps(value, default=_plain))


def _plain(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex() if len(v) <= 64 else f"<{len(v)} bytes>"
    return repr(v)


def _class_name(meta) -> str:
    try:
        return msgpack.unpackb(meta or b"").get("class_name", "?")
    except Exception:
        return "?"


def _hex(v) -> str:
    return v.hex() if isinstance(v, (bytes, bytearray)) else str(v or "")


def build(metrics: dict, actors: list, sessions: list, session_dir: str) -> dict:
    nodes, tasks = [], {}
    store = {"used": 0, "capacity": 0, "spilled": 0, "num_objects": 0, "num_spilled": 0}
    sandbox = {"starts": 0, "violations": {}}
    for n in metrics.get("nodes", ()):
        st = n.get("stats") or {}
        nodes.append({
            "node_id": n["node_id"], "alive": n.get("alive"), "head": n.get("head"),
            "host": n.get("host") or "local", "pid": n.get("pid"), "reason": n.get("reason"),
            "cpu_percent": st.get("cpu_percent"), "cpu_count": st.get("cpu_count"),
            "memory_used": st.get("memory_used"), "memory_total": st.get("memory_total"),
            "resources": n.get("resources"), "available": n.get("available"),
            "workers": st.get("workers", {}), "pending_leases": st.get("pending_leases", 0),
            "store": st.get("store", {})})
        for k in store:
            store[k] += (st.get("store") or {}).get(k, 0)
        for kind, table in (st.get("tasks") or {}).items():
            for name, count in table.items():
                tasks.setdefault(name, {"name": name, "submitted": 0, "finished": 0,
                                        "failed": 0})[kind] += count
        sb = st.get("sandbox") or {}
        sandbox["starts"] += sb.get("starts", 0)
        for kind, count in (sb.get("violations") or {}).items():
            sandbox["violations"][kind] = sandbox["violations"].get(kind, 0) + count
    for t in tasks.values():
        t["pending"] = max(0, t["submitted"] - t["finished"] - t["failed"])
    return {
        "time": time.time(), "session_dir": session_dir, "nodes": nodes,
        "actors": [{"actor_id": _hex(a.get("actor_id")), "name": a.get("name") or "",
                    "namespace": a.get("namespace") or "", "class": _class_name(a.get("meta")),
                    "state": a.get("state"), "node_id": a.get("node_id") or "",
                    "pid": a.get("pid") or 0, "restarts": a.get("restarts", 0),
                    "reason": a.get("reason") or "", "resources": a.get("shape") or {},
                    "worker_id": _hex(a.get("worker_id")), "detached": a.get("detached")}
                   for a in actors],
        "actors_by_state": metrics.get("actors_by_state", {}),
        "tasks": sorted(tasks.values(), key=lambda t: t["name"]),
        "failures": list(reversed(metrics.get("failures", []))),
        "sandbox": dict(sandbox, recent=list(reversed(metrics.get("violations", [])))),
        "store": store,
        "sessions": [{"key": k, "events": n} for k, n in sessions],
        "journal_steps": metrics.get("journal_steps", {}),
    }
