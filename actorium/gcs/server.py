"""The gcs: the head node's control store. Node membership, the actor directory with
names and restarts, the function table (KV), jobs; published actor state for
subscribers. Single-threaded event loop over one ROUTER; tables persisted in LMDB.
"""
from __future__ import annotations

import os
import time

import zmq

from actorium.core import protocol, transport
from actorium.gcs import actor_table as at
from actorium.gcs import durable_store
from actorium.gcs.durable_service import DurableService
from actorium.gcs.storage import Storage

NODE_TIMEOUT = 5.0


class Node:
    def __init__(self, node_id, raylet_addr, resources, store_root, pid, identity):
        self.node_id = node_id
        self.raylet_addr = raylet_addr
        self.total = resources
        self.available = dict(resources)
        self.store_root = store_root
        self.pid = pid
        self.identity = identity
        self.alive = True
        self.last_seen = time.monotonic()


class Gcs:
    def __init__(self, session_dir: str, ipc_addr: str, tcp_addr: str | None):
        self.session_dir = session_dir
        self.addrs = [a for a in (ipc_addr, tcp_addr) if a]
        self.storage = Storage(os.path.join(session_dir, "gcs"))
        self.durable = DurableService(*durable_store.open_store(
            os.path.join(session_dir, "gcs", "durable")))
        self.nodes: dict[str, Node] = {}
        self.actors: dict[bytes, at.ActorRecord] = {}
        self.named: dict[tuple, bytes] = {}
        self.subscribers: dict[bytes, set] = {}
        self.stopping = False
        for key, rec in self.storage.items("actors"):
            actor = at.ActorRecord.from_record(rec)
            self.actors[actor.actor_id] = actor
            if actor.name and actor.state != at.DEAD:
                self.named[(actor.namespace, actor.name)] = actor.actor_id

    def run(self) -> None:
        # One router per address: the tcp one is authenticated (CURVE, transport.secure),
        # the ipc one, in the owner-only session directory, is not.
        self.router = transport.RouterGroup(self.addrs, max_message=512 << 20)
        handlers = self._handlers()
        poller = zmq.Poller()
        for sock in self.router.socks:
            poller.register(sock, zmq.POLLIN)
        while not self.stopping:
            for _ in poller.poll(1000):
                self._drain(handlers)
                self.durable.flush(self.router)  # the drain's durable requests, one commit

    def _handlers(self) -> dict:
        p = protocol
        table = {
            p.RegisterNode: self.on_register_node, p.NodeHeartbeat: self.on_heartbeat,
            p.KvPut: self.on_kv_put, p.KvGet: self.on_kv_get,
            p.RegisterActor: self.on_register_actor, p.CreateActor: self.on_create_actor,
            p.ActorReady: self.on_actor_ready, p.ActorWorkerExited: self.on_actor_exited,
            p.SubscribeActor: self.on_subscribe, p.KillActor: self.on_kill_actor,
            p.GetNamedActor: self.on_get_named, p.ListState: self.on_list,
            p.JobFinished: self.on_job_finished, p.Ping: self.on_ping, p.Hello: self.on_hello,
        }
        table.update(self.durable.handlers())
        return table

    def _drain(self, handlers) -> None:
        for identity, data in self.router.pending():
            transport.dispatch(handlers, identity, data, "gcs", self.router)

    def _reply(self, identity, req_id, value=None, ok=True) -> None:
        transport.reply_to(self.router, identity, req_id, value, ok)

    def _push(self, identity, msg) -> None:
        self.router.send_multipart([identity, protocol.encode(msg)])

    # -- nodes ------------------------------------------------------------------
    def on_register_node(self, identity, msg) -> None:
        if msg.version != protocol.PROTOCOL_VERSION:
            print(f"gcs: refused node {msg.node_id!r} speaking protocol version "
                  f"{msg.version!r} (this cluster speaks {protocol.PROTOCOL_VERSION})", flush=True)
            self._reply(identity, msg.req_id, protocol.version_mismatch(msg.version), ok=False)
            return
        self.nodes[msg.node_id] = Node(msg.node_id, msg.raylet_addr, msg.resources,
                                       msg.store_root, msg.pid, identity)
        self._reply(identity, msg.req_id, True)
        self._schedule_pending()

    def on_heartbeat(self, identity, msg) -> None:
        node = self.nodes.get(msg.node_id)
        if node is not None:
            node.available = msg.available
            node.last_seen = time.monotonic()
            node.identity = identity

    # -- kv / function table ------------------------------------------------------
    def on_kv_put(self, identity, msg) -> None:
        added = self.storage.put_raw("kv", msg.key, msg.value, overwrite=msg.overwrite)
        self._reply(identity, msg.req_id, added)

    def on_kv_get(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, self.storage.get_raw("kv", msg.key))

    # -- actors -------------------------------------------------------------------
    def _save(self, actor: at.ActorRecord) -> None:
        self.storage.put("actors", actor.actor_id, actor.to_record())

    def _set_state(self, actor: at.ActorRecord, state: str, why: str) -> None:
        at.transition(actor, state, why)
        if state == at.DEAD and actor.name and \
                self.named.get((actor.namespace, actor.name)) == actor.actor_id:
            del self.named[(actor.namespace, actor.name)]
        self._save(actor)
        self._publish(actor)

    def _update(self, actor: at.ActorRecord) -> protocol.ActorUpdate:
        return protocol.ActorUpdate(actor.actor_id, actor.state, actor.task_addr,
                                    actor.owner_addr, actor.reason, actor.error, actor.restarts)

    def _publish(self, actor: at.ActorRecord) -> None:
        data = protocol.encode(self._update(actor))
        for identity in self.subscribers.get(actor.actor_id, ()):
            self.router.send_multipart([identity, data])

    def on_register_actor(self, identity, msg) -> None:
        key = (msg.namespace, msg.name)
        if msg.name and key in self.named:
            existing = self.actors[self.named[key]]
            if msg.get_if_exists:
                self._reply(identity, msg.req_id, {"created": False, **existing.info()})
                return
            self._reply(identity, msg.req_id,
                        f"The name {msg.name!r} (namespace={msg.namespace!r}) is already "
                        f"taken by another actor.", ok=False)
            return
        actor = at.ActorRecord(msg.actor_id, msg.name, msg.namespace, msg.detached,
                               msg.max_restarts, msg.shape, msg.owner_job, msg.meta)
        self.actors[msg.actor_id] = actor
        if msg.name:
            self.named[key] = msg.actor_id
        self._save(actor)
        self._reply(identity, msg.req_id, {"created": True, **actor.info()})

    def on_create_actor(self, identity, msg) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None or actor.state == at.DEAD:
            return
        actor.init = msg.init
        self._set_state(actor, at.PENDING_CREATION, "dependencies resolved")
        self._schedule(actor)

    def _schedule(self, actor: at.ActorRecord) -> None:
        """Send the actor to a live node whose total resources can hold it."""
        from actorium.raylet import resources as res
        candidates = [n for n in self.nodes.values() if n.alive and res.feasible(actor.shape, n.total)]
        if not candidates:
            return  # stays PENDING_CREATION until a node that fits registers
        candidates.sort(key=lambda n: (not res.fits(actor.shape, n.available), n.node_id))
        node = candidates[0]
        actor.node_id = node.node_id
        self._push(node.identity, protocol.StartActor(actor.actor_id, actor.shape, actor.init))

    def _schedule_pending(self) -> None:
        for actor in self.actors.values():
            if actor.state == at.PENDING_CREATION and not actor.node_id:
                self._schedule(actor)

    def on_actor_ready(self, identity, msg) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None:
            return
        if actor.state == at.DEAD:
            return
        actor.task_addr, actor.owner_addr = msg.task_addr, msg.owner_addr
        actor.node_id, actor.pid = msg.node_id, msg.pid
        self._set_state(actor, at.ALIVE, "constructor finished")

    def on_actor_exited(self, identity, msg) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None or actor.state == at.DEAD:
            return
        actor.task_addr = actor.owner_addr = ""
        if msg.creation_error:
            actor.error = msg.creation_error
            actor.reason = msg.reason
            self._set_state(actor, at.DEAD, msg.reason)
            return
        if actor.can_restart():
            actor.restarts += 1
            actor.reason = msg.reason
            self._set_state(actor, at.RESTARTING, msg.reason)
            actor.node_id = ""
            self._set_state(actor, at.PENDING_CREATION, "restarting")
            init = protocol.decode(actor.init)
            init.restarts = actor.restarts
            actor.init = protocol.encode(init)
            self._schedule(actor)
        else:
            actor.reason = ("it was killed with actorium.kill()" if actor.no_restart
                            else f"its worker process died ({msg.reason}) and no restarts are left")
            self._set_state(actor, at.DEAD, msg.reason)

    def on_subscribe(self, identity, msg) -> None:
        self.subscribers.setdefault(msg.actor_id, set()).add(identity)
        actor = self.actors.get(msg.actor_id)
        if actor is not None:
            self._push(identity, self._update(actor))

    def on_kill_actor(self, identity, msg) -> None:
        actor = self.actors.get(msg.actor_id)
        if actor is None:
            self._reply(identity, msg.req_id, False)
            return
        self._kill(actor, msg.no_restart)
        self._reply(identity, msg.req_id, True)

    def _kill(self, actor: at.ActorRecord, no_restart: bool) -> None:
        """Kill the actor's worker. With no_restart the actor is DEAD from this moment,
        so no call made after ``kill`` returns can reach it."""
        if actor.state == at.DEAD:
            return
        node = self.nodes.get(actor.node_id)
        if node is not None and node.alive and actor.state != at.DEPENDENCIES_UNREADY:
            self._push(node.identity, protocol.KillWorker(actor.actor_id))
        if no_restart:
            actor.no_restart = True
            actor.reason = "it was killed with actorium.kill()"
            self._set_state(actor, at.DEAD, "killed")

    def on_get_named(self, identity, msg) -> None:
        actor_id = self.named.get((msg.namespace, msg.name))
        actor = self.actors.get(actor_id) if actor_id else None
        self._reply(identity, msg.req_id, actor.info() if actor else None)

    def on_job_finished(self, identity, msg) -> None:
        for actor in list(self.actors.values()):
            if actor.owner_job == msg.job and not actor.detached and actor.state != at.DEAD:
                self._kill(actor, True)
        self._reply(identity, msg.req_id, True)

    def on_list(self, identity, msg) -> None:
        if msg.what == "nodes":
            value = [{"node_id": n.node_id, "alive": n.alive, "raylet_addr": n.raylet_addr,
                      "resources": n.total, "available": n.available, "pid": n.pid,
                      "store_root": n.store_root} for n in self.nodes.values()]
        elif msg.what == "actors":
            value = [a.info() for a in self.actors.values()]
        else:
            raise ValueError(f"unknown listing {msg.what!r}")
        self._reply(identity, msg.req_id, value)

    def on_ping(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, "gcs")

    def on_hello(self, identity, msg) -> None:
        """A driver or CLI says which protocol it speaks; a mismatch is refused."""
        if msg.version != protocol.PROTOCOL_VERSION:
            print(f"gcs: refused a {msg.kind!r} speaking protocol version {msg.version!r} "
                  f"(this cluster speaks {protocol.PROTOCOL_VERSION})", flush=True)
            self._reply(identity, msg.req_id, protocol.version_mismatch(msg.version), ok=False)
            return
        self._reply(identity, msg.req_id, {"version": protocol.PROTOCOL_VERSION})


def main(session_dir: str, ipc_addr: str, tcp_addr: str | None) -> None:
    gcs = Gcs(session_dir, ipc_addr, tcp_addr)
    try:
        gcs.run()
    finally:
        gcs.durable.close()
        gcs.storage.close()
