"""Node membership in the gcs: registration, heartbeats and failure detection.

Node lifecycle: ALIVE -> DEAD, nothing else. A node is declared DEAD when it has been
silent for ``timeout`` seconds (its heartbeats come every HEARTBEAT_PERIOD), when it
asks to leave, or when a node that re-registers under the same id replaces it. DEAD is
final for that node id: a dead node that speaks again is told so and stops itself
(fail-stop), because its actors and tasks have already been failed over elsewhere.

Records are persisted (table ``nodes``) so a restarted gcs knows which nodes to expect:
those recorded ALIVE get a fresh ``timeout`` to heartbeat again before being declared
dead.
"""
from __future__ import annotations

import os
import time

ALIVE, DEAD = "ALIVE", "DEAD"
TRANSITIONS = {(ALIVE, DEAD)}

HEARTBEAT_PERIOD = float(os.environ.get("ACTORIUM_HEARTBEAT_PERIOD", "0.25"))
DEFAULT_TIMEOUT = float(os.environ.get("ACTORIUM_NODE_TIMEOUT", "1.5"))


class InvalidTransition(RuntimeError):
    pass


class NodeRecord:
    __slots__ = ("node_id", "raylet_addr", "total", "available", "store_root", "pid",
                 "identity", "state", "last_seen", "head", "host", "reason", "history",
                 "data_addr", "pending", "busy", "idle_since", "draining")

    def __init__(self, node_id: str, raylet_addr: str, total: dict, store_root: str,
                 pid: int, identity, head: bool = False, host: str = "",
                 data_addr: str = ""):
        self.node_id = node_id
        self.raylet_addr = raylet_addr
        self.total = dict(total)
        self.available = dict(total)
        self.store_root = store_root
        self.pid = pid
        self.identity = identity
        self.state = ALIVE
        self.last_seen = time.monotonic()
        self.head = head
        self.host = host
        self.data_addr = data_addr
        # For the node autoscaler (gcs/elastic.py): the node's unserved demand, its
        # busy workers, since when it has had none, and whether work is kept off it.
        self.pending: list = []
        self.busy = 0
        self.idle_since = time.monotonic()
        self.draining = False
        self.reason = ""
        self.history: list = [(ALIVE, time.time(), "registered")]

    @property
    def alive(self) -> bool:
        return self.state == ALIVE

    def to_record(self) -> dict:
        return {"node_id": self.node_id, "raylet_addr": self.raylet_addr,
                "total": self.total, "store_root": self.store_root, "pid": self.pid,
                "state": self.state, "head": self.head, "host": self.host,
                "reason": self.reason, "data_addr": self.data_addr}

    @classmethod
    def from_record(cls, rec: dict) -> "NodeRecord":
        n = cls(rec["node_id"], rec["raylet_addr"], rec["total"], rec["store_root"],
                rec["pid"], None, rec.get("head", False), rec.get("host", ""),
                rec.get("data_addr", ""))
        n.state = rec["state"]
        n.reason = rec.get("reason", "")
        n.history = [(n.state, time.time(), "loaded")]
        return n

    def info(self) -> dict:
        return {"node_id": self.node_id, "alive": self.alive, "state": self.state,
                "raylet_addr": self.raylet_addr, "resources": self.total,
                "available": self.available if self.alive else {}, "pid": self.pid,
                "store_root": self.store_root, "head": self.head, "host": self.host,
                "data_addr": self.data_addr, "reason": self.reason}


def transition(node: NodeRecord, state: str, why: str) -> None:
    if (node.state, state) not in TRANSITIONS:
        raise InvalidTransition(f"node {node.node_id}: {node.state} -> {state} ({why}) is "
                                f"not allowed; history: {node.history}")
    node.state = state
    node.reason = why
    node.history.append((state, time.time(), why))


class Membership:
    """The node table. Pure bookkeeping: the gcs acts on what ``expire`` returns."""

    def __init__(self, storage, timeout: float = DEFAULT_TIMEOUT):
        self.storage = storage
        self.timeout = timeout
        self.nodes: dict[str, NodeRecord] = {}
        # The head node that registered with this gcs process: the gcs lives and dies
        # with it (PDEATHSIG), so it is never timed out, which would only make a busy
        # single-node cluster stop itself. A head loaded from disk (a previous
        # incarnation's) times out like any node.
        self.own_head = ""
        for _key, rec in storage.items("nodes"):
            node = NodeRecord.from_record(rec)
            self.nodes[node.node_id] = node  # last_seen = now: a fresh grace period

    def _save(self, node: NodeRecord) -> None:
        self.storage.put("nodes", node.node_id.encode(), node.to_record())

    def register(self, node: NodeRecord) -> NodeRecord | None:
        """Add (or re-add, after a gcs restart) a node; returns a replaced live record
        with another address, which the caller must treat as dead."""
        old = self.nodes.get(node.node_id)
        replaced = None
        if old is not None and old.alive and old.raylet_addr != node.raylet_addr:
            transition(old, DEAD, "replaced by a node registering under the same id")
            replaced = old
        self.nodes[node.node_id] = node
        if node.head:
            self.own_head = node.node_id
        self._save(node)
        return replaced

    def heartbeat(self, node_id: str, available: dict, identity, pending=None,
                  busy: int = 0) -> NodeRecord | None:
        node = self.nodes.get(node_id)
        if node is None:
            return None
        if node.alive:
            node.available = available
            node.last_seen = time.monotonic()
            node.identity = identity
            node.pending = list(pending or [])
            if busy or node.pending:
                node.idle_since = node.last_seen
            node.busy = busy
        return node

    def mark_dead(self, node: NodeRecord, why: str) -> bool:
        if not node.alive:
            return False
        transition(node, DEAD, why)
        self._save(node)
        return True

    def expire(self, now: float | None = None) -> list[NodeRecord]:
        """Declare dead every live node silent for longer than the timeout."""
        now = time.monotonic() if now is None else now
        dead = []
        for node in self.nodes.values():
            if node.alive and now - node.last_seen > self.timeout \
                    and node.node_id != self.own_head:
                self.mark_dead(node, f"no heartbeat for {now - node.last_seen:.1f}s "
                                     f"(timeout {self.timeout:g}s)")
                dead.append(node)
        return dead

    def alive(self) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if n.alive]

    def schedulable(self) -> list[NodeRecord]:
        """Live nodes new work may go to (not being drained by the autoscaler)."""
        return [n for n in self.nodes.values() if n.alive and not n.draining]

    def broadcast_view(self, router) -> None:
        """Push the current ClusterView to every live raylet (a node joined, or one is
        drained and must leave their spillback choices at once)."""
        from actorium.core.wire import protocol
        view = protocol.encode(protocol.ClusterView(self.view()))
        for other in self.alive():
            if other.identity is not None:
                router.send_multipart([other.identity, view])

    def view(self) -> list:
        return [[n.node_id, n.raylet_addr, n.total, n.available, n.data_addr]
                for n in self.schedulable()]
