"""The gcs: the head node's control store. Node membership, the actor directory with
names and restarts, the function table (KV), jobs; published actor state for
subscribers. Single-threaded event loop over one ROUTER; tables persisted in LMDB.
"""
from __future__ import annotations

import os
import time

import zmq

from actorium.core.wire import protocol, transport
from actorium.gcs import actor_table as at
from actorium.gcs import durable_store, elastic
from actorium.gcs import membership as mb
from actorium.gcs.durable_replica import ReplicaLink
from actorium.gcs.durable_service import DurableService
from actorium.gcs.storage import Storage
from actorium.scheduling import placement
from actorium.scheduling import resources as res

class Gcs:
    def __init__(self, session_dir: str, ipc_addr: str, tcp_addr: str | None,
                 node_timeout: float = mb.DEFAULT_TIMEOUT):
        self.session_dir = session_dir
        self.addrs = [a for a in (ipc_addr, tcp_addr) if a]
        self.storage = Storage(os.path.join(session_dir, "gcs"))
        self.members = mb.Membership(self.storage, node_timeout)
        # Only a TCP cluster can have nodes elsewhere to replicate the durable store to.
        self.durable = DurableService(*durable_store.open_store(
            os.path.join(session_dir, "gcs", "durable")),
            ReplicaLink(self.storage, self.members) if tcp_addr else None)
        self.nodes = self.members.nodes
        self.node_subscribers: set = set()
        self.spread_turn = 0
        self.actors: dict[bytes, at.ActorRecord] = {}
        self.named: dict[tuple, bytes] = {}
        self.subscribers: dict[bytes, set] = {}
        self.stopping = False
        # Changes at every start: clients notice a restarted gcs and subscribe again.
        self.incarnation = os.urandom(4).hex()
        for key, rec in self.storage.items("actors"):
            actor = at.ActorRecord.from_record(rec)
            self.actors[actor.actor_id] = actor
            if actor.name and actor.state != at.DEAD:
                self.named[(actor.namespace, actor.name)] = actor.actor_id

    def run(self) -> None:
        self.durable.recover_from_standby()
        # One router per address: the tcp one is authenticated (CURVE, transport.secure),
        # the ipc one, in the owner-only session directory, is not.
        self.router = transport.RouterGroup(self.addrs, max_message=512 << 20)
        handlers = self._handlers()
        poller = zmq.Poller()
        for sock in self.router.socks:
            poller.register(sock, zmq.POLLIN)
        period = max(0.05, mb.HEARTBEAT_PERIOD / 2)
        next_check = time.monotonic() + period
        while not self.stopping:
            for _ in poller.poll(int(period * 1000)):
                self._drain(handlers)
                self.durable.flush(self.router)  # the drain's durable requests, one commit
            now = time.monotonic()
            if now >= next_check:
                next_check = now + period
                for node in self.members.expire(now):
                    self._node_died(node)

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
            p.SubscribeNodes: self.on_subscribe_nodes, p.NodeUpdate: self.on_node_leaving,
            p.DrainNode: lambda i, m: elastic.on_drain_node(self, i, m),
            p.ActorOutgrown: lambda i, m: elastic.on_actor_outgrown(self, i, m),
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
        old = self.nodes.get(msg.node_id)
        if old is not None and not old.alive:
            self._reply(identity, msg.req_id, f"node {msg.node_id} was declared dead "
                        f"({old.reason}); start it again under a new id", ok=False)
            return
        node = mb.NodeRecord(msg.node_id, msg.raylet_addr, msg.resources, msg.store_root,
                             msg.pid, identity, msg.head, msg.host, msg.data_addr)
        replaced = self.members.register(node)
        if replaced is not None:
            self._node_died(replaced)
        self._reply(identity, msg.req_id, {"node_timeout": self.members.timeout,
                                           "heartbeat_period": mb.HEARTBEAT_PERIOD})
        self._publish_node(node)
        self.members.broadcast_view(self.router)  # so spillback can use the new node at once
        self._schedule_pending()

    def on_heartbeat(self, identity, msg) -> None:
        node = self.members.heartbeat(msg.node_id, msg.available, identity, msg.pending,
                                      msg.busy)
        if node is None:
            self._push(identity, protocol.NodeUpdate(
                msg.node_id, "", False, "this node is unknown to the gcs"))
        elif not node.alive:
            self._push(identity, protocol.NodeUpdate(node.node_id, node.raylet_addr, False,
                                                     node.reason))
        else:
            self._push(identity, protocol.ClusterView(self.members.view()))

    def on_node_leaving(self, identity, msg) -> None:
        """A node stopping on purpose (only a node speaks for itself)."""
        node = self.nodes.get(msg.node_id)
        if node is None or msg.alive or node.identity != identity:
            return
        if self.members.mark_dead(node, msg.reason or "the node left"):
            self._node_died(node)

    def on_subscribe_nodes(self, identity, msg) -> None:
        self.node_subscribers.add(identity)

    def _publish_node(self, node: mb.NodeRecord) -> None:
        data = protocol.encode(protocol.NodeUpdate(node.node_id, node.raylet_addr,
                                                   node.alive, node.reason))
        targets = set(self.node_subscribers)
        targets.update(n.identity for n in self.nodes.values()
                       if n.identity is not None and (n.alive or n is node))
        for identity in targets:
            self.router.send_multipart([identity, data])

    def _node_died(self, node: mb.NodeRecord) -> None:
        """Fail over what lived on a node declared dead: tell everyone, then restart
        (or bury) its actors elsewhere."""
        print(f"gcs: node {node.node_id} is dead: {node.reason}", flush=True)
        if self.durable.replicas is not None:
            self.durable.replicas.node_died(node.node_id)
        self._publish_node(node)
        for actor in list(self.actors.values()):
            if actor.node_id != node.node_id:
                continue
            if actor.state == at.PENDING_CREATION:
                actor.node_id = ""  # never started there: place it again, no restart used
                self._schedule(actor)
            elif actor.state == at.ALIVE:
                self._actor_lost(actor, f"its node {node.node_id} died ({node.reason})", b"")

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
                               msg.max_restarts, msg.shape, msg.owner_job, msg.meta,
                               msg.strategy, msg.auto)
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
        """Send the actor to a live node chosen by its strategy (placement.choose)."""
        view = {n.node_id: (n.total, n.available) for n in self.members.schedulable()}
        strategy = actor.strategy
        if actor.move_to:  # an outgrown durable actor: to the node found with room for it
            strategy, actor.move_to = [placement.NODE_AFFINITY, actor.move_to, True], ""
        try:
            node_id = placement.choose(actor.shape, strategy, view, None, self.spread_turn)
        except placement.Unschedulable as exc:
            actor.reason = str(exc)
            self._set_state(actor, at.DEAD, "unschedulable")
            return
        if node_id is None:
            return  # stays PENDING_CREATION until a node that fits registers
        self.spread_turn += 1
        node = self.nodes[node_id]
        res.subtract(node.available, actor.shape)  # until its next heartbeat says better
        actor.node_id = node.node_id
        actor.outgrown = ""
        self._push(node.identity, protocol.StartActor(actor.actor_id, actor.shape, actor.init,
                                                      actor.auto))

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
        self._actor_lost(actor, msg.reason, msg.creation_error)

    def _actor_lost(self, actor: at.ActorRecord, reason: str, creation_error: bytes) -> None:
        actor.task_addr = actor.owner_addr = ""
        if creation_error:
            actor.error = creation_error
            actor.reason = reason
            self._set_state(actor, at.DEAD, reason)
            return
        moving = bool(actor.move_to)  # not a failure: no restart used
        if moving or actor.can_restart():
            actor.restarts += 0 if moving else 1
            actor.reason = reason
            self._set_state(actor, at.RESTARTING, reason)
            actor.node_id = ""
            self._set_state(actor, at.PENDING_CREATION, "restarting")
            init = protocol.decode(actor.init)
            init.restarts = actor.restarts
            actor.init = protocol.encode(init)
            self._schedule(actor)
        else:
            actor.reason = ("it was killed with actorium.kill()" if actor.no_restart
                            else f"its worker process died ({reason}) and no restarts are left")
            self._set_state(actor, at.DEAD, reason)

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
            value = [n.info() for n in self.nodes.values()]
        elif msg.what == "actors":
            value = [a.info() for a in self.actors.values()]
        elif msg.what == "demand":
            value = elastic.demand(self)
        else:
            raise ValueError(f"unknown listing {msg.what!r}")
        self._reply(identity, msg.req_id, value)

    def on_ping(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, f"gcs {self.incarnation}")

    def on_hello(self, identity, msg) -> None:
        """A driver or CLI says which protocol it speaks; a mismatch is refused."""
        if msg.version != protocol.PROTOCOL_VERSION:
            print(f"gcs: refused a {msg.kind!r} speaking protocol version {msg.version!r} "
                  f"(this cluster speaks {protocol.PROTOCOL_VERSION})", flush=True)
            self._reply(identity, msg.req_id, protocol.version_mismatch(msg.version), ok=False)
            return
        self._reply(identity, msg.req_id, {"version": protocol.PROTOCOL_VERSION})


def main(session_dir: str, ipc_addr: str, tcp_addr: str | None,
         node_timeout: float = mb.DEFAULT_TIMEOUT) -> None:
    gcs = Gcs(session_dir, ipc_addr, tcp_addr, node_timeout)
    try:
        gcs.run()
    finally:
        gcs.durable.close()
        gcs.storage.close()
