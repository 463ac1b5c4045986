"""The gcs's part of elasticity: what the node autoscaler reads (demand, idleness),
draining nodes it is about to remove, and moving right-sized durable actors that have
outgrown their node.

* **Demand** (``ListState("demand")``): the shapes of actors no live node can hold
  (placed nowhere), plus each raylet's unserved lease requests and queued actors
  (reported in its heartbeat), and per node its totals, availability, busy workers and
  seconds idle.
* **Drain** (``DrainNode``): a draining node leaves the placement view and the
  ``ClusterView`` the raylets spill with, so no new actor or spilled lease goes there;
  the reply says whether it is idle, which is when the autoscaler terminates it.
* **Outgrown actors** (``ActorOutgrown``): the raylet says a ``resources="auto"`` actor
  wants more than its node can give. The gcs records it (``actorium list actors``);
  a durable actor (checkpointed or a session) is moved when another node has room
  for what it wants: its worker is killed, and it is started there from its last
  checkpoint, without using one of its ``max_restarts``.
"""
from __future__ import annotations

import time

from actorium.core.wire import protocol
from actorium.gcs import actor_table as at
from actorium.scheduling import resources as res

MAX_PENDING = 100


def demand(gcs) -> dict:
    now = time.monotonic()
    pending = [dict(a.shape) for a in gcs.actors.values()
               if a.state == at.PENDING_CREATION and not a.node_id][:MAX_PENDING]
    nodes = []
    for n in gcs.members.alive():
        pending.extend(n.pending[:MAX_PENDING])
        nodes.append({"node_id": n.node_id, "head": n.head, "total": n.total,
                      "available": n.available, "busy": n.busy, "draining": n.draining,
                      "pending": len(n.pending), "pid": n.pid,
                      "idle_for": 0.0 if n.busy or n.pending else now - n.idle_since})
    return {"pending": pending[:MAX_PENDING], "nodes": nodes}


def on_drain_node(gcs, identity, msg) -> None:
    node = gcs.nodes.get(msg.node_id)
    if node is None or not node.alive:
        gcs._reply(identity, msg.req_id, {"idle": True, "alive": False})
        return
    if node.head and msg.drain:
        gcs._reply(identity, msg.req_id, "the head node is never drained", ok=False)
        return
    node.draining = bool(msg.drain)
    if msg.drain:
        gcs.members.broadcast_view(gcs.router)
    else:
        gcs._schedule_pending()
    # Idle also means no actor is on its way there (placed, not yet started).
    placed = any(a.node_id == node.node_id and a.state in (at.PENDING_CREATION, at.ALIVE)
                 for a in gcs.actors.values())
    gcs._reply(identity, msg.req_id, {"idle": not node.busy and not node.pending
                                      and not placed, "alive": True})


def on_actor_outgrown(gcs, identity, msg) -> None:
    actor = gcs.actors.get(msg.actor_id)
    if actor is None or actor.state != at.ALIVE or actor.node_id != msg.node_id:
        return
    actor.outgrown = msg.reason
    if not msg.reason or actor.move_to or not _durable(actor):
        return
    target = _room_for(gcs, msg.wanted, exclude=msg.node_id)
    if target is None:
        print(f"gcs: actor {actor.actor_id.hex()} has outgrown node {msg.node_id} "
              f"({msg.reason}) and no other node has room for {msg.wanted}", flush=True)
        return
    print(f"gcs: moving durable actor {actor.actor_id.hex()} from node {msg.node_id} to "
          f"{target.node_id}: {msg.reason}", flush=True)
    actor.move_to = target.node_id
    actor.shape = {**actor.shape, **msg.wanted}  # placed with what it is known to need
    node = gcs.nodes.get(msg.node_id)
    if node is not None and node.alive:
        gcs._push(node.identity, protocol.KillWorker(actor.actor_id))


def _durable(actor) -> bool:
    try:
        return (protocol.decode(actor.init).runtime or {}).get("name") == "durable"
    except protocol.ProtocolError:
        return False


def _room_for(gcs, shape: dict, exclude: str):
    fitting = [n for n in gcs.members.schedulable()
               if n.node_id != exclude and res.fits(shape, n.available)]
    return max(fitting, key=lambda n: n.available.get("CPU", 0.0), default=None)
