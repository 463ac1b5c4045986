"""Where a lease request should run: here, or spilled back to another node.

The raylet keeps the cluster view the gcs sends in answer to each heartbeat (live
nodes with their total and available resources). A request that has not been
forwarded yet is routed with ``placement.choose`` over that view, where this node's
entry is the raylet's own, exact accounting. A request forwarded once (``spilled``)
is always queued where it lands, so a request moves at most one hop and two raylets
with stale views cannot bounce it between them.

Between two views, every spill to a node is subtracted from that node's entry, so a
burst of requests does not all go to the one node that looked free.
"""
from __future__ import annotations

import sys

from actorium.core.wire import protocol
from actorium.scheduling import placement
from actorium.scheduling import resources as res

LOCAL = "local"
SPILL = "spill"
REJECT = "reject"


class ClusterView:
    """The other live nodes as last reported by the gcs: node id -> [addr, total, available]."""

    def __init__(self, node_id: str):
        self.node_id = node_id
        self.nodes: dict[str, list] = {}
        self.turn = 0  # SPREAD round robin
        self.data_addrs: dict[str, str] = {}

    def update(self, entries: list) -> bool:
        """Replace the view; True if a node appeared (parked requests may now fit)."""
        fresh = {e[0]: [e[1], e[2], dict(e[3])] for e in entries if e[0] != self.node_id}
        joined = any(n not in self.nodes for n in fresh)
        self.nodes = fresh
        # raylet address -> its object data port (kept for nodes that left the view, so
        # a pull already under way is not stranded; a dead node's pulls fail anyway)
        self.data_addrs.update({e[1]: e[4] for e in entries if len(e) > 4 and e[4]})
        return joined

    def drop(self, node_id: str) -> None:
        self.nodes.pop(node_id, None)

    def addrs(self) -> list[str]:
        return [entry[0] for entry in self.nodes.values()]

    def route(self, shape: dict, strategy, total: dict, available: dict) -> tuple:
        """(LOCAL,) | (SPILL, node_id, raylet_addr) | (REJECT, reason)."""
        if not self.nodes and not strategy:
            return (LOCAL,)  # a single node: nothing to decide
        view = {n: (e[1], e[2]) for n, e in self.nodes.items()}
        view[self.node_id] = (total, available)
        try:
            target = placement.choose(shape, strategy, view, self.node_id, self.turn)
        except placement.Unschedulable as exc:
            return (REJECT, str(exc))
        if strategy == placement.SPREAD:
            self.turn += 1
        if target is None or target == self.node_id:
            return (LOCAL,)
        entry = self.nodes[target]
        res.subtract(entry[2], shape)
        return (SPILL, target, entry[0])


def route(raylet, req) -> bool:
    """Send a lease request elsewhere if the cluster view says so; True if it left."""
    if req.spilled:
        return False
    where = raylet.view.route(req.shape, req.strategy, raylet.total, raylet.available)
    if where[0] == LOCAL:
        return False
    if where[0] == SPILL:
        raylet._answer(req, protocol.LeaseSpillback(req.req_id, where[2], where[1]))
    else:
        raylet._answer(req, protocol.LeaseRejected(req.req_id, where[1]))
    return True


def on_cluster_view(raylet, msg) -> None:
    if raylet.view.update(msg.nodes) and raylet.requests:
        raylet._dispatch()  # a node joined: parked requests may fit there


def on_node_update(raylet, msg) -> None:
    """A node died: forget it, fail pulls from it, drop the leases its processes held.
    Our own death notice (we were silent too long) stops this node: its work has
    already been failed over."""
    if msg.node_id == raylet.node_id:
        if not msg.alive:
            print(f"raylet: the gcs declared this node dead ({msg.reason}); stopping",
                  file=sys.stderr)
            raylet.stopping = True
        return
    if msg.alive:
        return
    raylet.view.drop(msg.node_id)
    raylet.puller.source_died(msg.raylet_addr)
    raylet._owner_gone(node_id=msg.node_id)
    raylet._dispatch()
