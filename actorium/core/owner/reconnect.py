"""Staying connected when the head restarts or a driver's own node dies (multi-node
clusters only).

* Every second the I/O thread pings the gcs over its gcs socket. The answer names the
  gcs's incarnation; when it changes, the gcs was restarted (its tables came back from
  disk, but not who listens to what), so this process subscribes again to node events
  and to every actor it follows, and gets each actor's current state back.
* When the gcs declares this process's own node dead, a driver re-attaches to another
  live node on this machine (``attach_local_node``): new raylet socket, that node's
  store. A worker has nothing to re-attach: it dies with its node.
"""
from __future__ import annotations

import os

from actorium.core.wire import protocol, transport

CHECK_PERIOD = 1.0


def start(cw) -> None:
    """I/O thread, at start-up of a multi-node core worker."""
    cw.gcs_incarnation = ""
    cw.gcs_check_pending = 0
    cw.gcs_sock.send(protocol.encode(protocol.SubscribeNodes()))
    _check(cw)  # learn the incarnation now, before anything can restart the gcs


def _check(cw) -> None:
    if cw._stopping:
        return
    if cw.gcs_check_pending:  # unanswered: the gcs is down; forget it, ask again
        cw._req_callbacks.pop(cw.gcs_check_pending, None)
    msg = protocol.Ping(transport.next_req_id())
    cw.gcs_check_pending = msg.req_id
    cw.request("gcs", msg, lambda reply: _on_pong(cw, reply))
    cw.call_later(CHECK_PERIOD, _check, cw)


def _on_pong(cw, reply) -> None:
    cw.gcs_check_pending = 0
    incarnation = reply.value if reply.ok else ""
    if cw.gcs_incarnation and incarnation != cw.gcs_incarnation:
        resubscribe(cw)
    cw.gcs_incarnation = incarnation


def resubscribe(cw) -> None:
    cw._send_gcs(protocol.SubscribeNodes())
    for actor_id in list(cw.actors.actors):
        cw._send_gcs(protocol.SubscribeActor(actor_id))
    # Deaths published before we subscribed again would be missed: read the node table.
    cw.request("gcs", protocol.ListState(transport.next_req_id(), "nodes"),
               lambda reply: _catch_up(cw, reply))


def _catch_up(cw, reply) -> None:
    if not reply.ok:
        return
    for n in reply.value:
        if not n["alive"] and n["raylet_addr"] not in cw.dead_raylets:
            # handled as if published (remote_objects.on_node_update), through the core
            # worker: reconnect sits below remote_objects, which calls reattach here
            cw._on_node_update(protocol.NodeUpdate(
                n["node_id"], n["raylet_addr"], False, n.get("reason", "")))


def attach_local_node(nodes: list, exclude: str = "") -> dict | None:
    """A live node whose object store is on this machine (the head first), with the
    configuration the node itself reports."""
    local = [n for n in nodes if n["alive"] and n["raylet_addr"] != exclude
             and os.path.isdir(n.get("store_root", ""))]
    local.sort(key=lambda n: not n.get("head"))
    for node in local:
        try:
            stats = transport.rpc(node["raylet_addr"], protocol.NodeStats(
                transport.next_req_id()), timeout=5, what="a raylet")
        except (TimeoutError, transport.RpcError):
            continue
        config = stats.get("config") or {}
        return {"node_id": node["node_id"], "raylet_addr": node["raylet_addr"],
                "store_root": node["store_root"], "session_dir": config.get("session_dir", ""),
                "store_capacity": config.get("store_capacity", 0),
                "spill_dir": config.get("spill_dir"), "host": config.get("host", ""),
                "gcs_tcp": ""}
    return None


def reattach(cw) -> bool:
    """I/O thread: our node died; a driver moves to another node of this machine."""
    if cw.kind != "driver":
        return False
    try:
        nodes = transport.rpc(cw.gcs_addr, protocol.ListState(transport.next_req_id(), "nodes"),
                              timeout=5, what="the gcs")
    except (TimeoutError, transport.RpcError):
        return False
    info = attach_local_node(nodes, exclude=cw.raylet_addr)
    if info is None:
        return False
    _swap_raylet(cw, info)
    cw.request("raylet", protocol.RegisterClient(
        transport.next_req_id(), cw.worker_id, os.getpid(), "driver", "", cw.owner_addr,
        cw.job), lambda _reply: None)
    return True


def _swap_raylet(cw, info: dict) -> None:
    """I/O thread: attach to another node's raylet. Its store replaces ours; values that
    lived only in the old one are lost unless lineage rebuilds them."""
    import zmq
    cw._poller.unregister(cw.raylet_sock)
    cw.raylet_sock.close(0)
    cw.raylet_addr, cw.node_id = info["raylet_addr"], info["node_id"]
    cw.store_root = info["store_root"]
    cw.store_capacity = info.get("store_capacity", 0)
    cw.spill_dir = info.get("spill_dir")
    if cw._store is not None:
        cw._store.close()
        cw._store = None
    cw.raylet_sock = transport.connect_dealer(cw.raylet_addr)
    cw._poller.register(cw.raylet_sock, zmq.POLLIN)
