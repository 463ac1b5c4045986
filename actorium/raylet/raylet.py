"""The raylet: one per node. Grants worker leases for resource shapes, keeps a pool of
warm workers forked by the zygote, starts actors, frees objects, relays worker output
to drivers, and reports to the gcs.

Lease lifecycle: requested -> granted -> returned | worker died. Worker states:
starting -> idle <-> leased, or starting/idle -> actor; any -> dead. The raylet is not on
the per-task path: owners push tasks to leased workers directly.
"""
from __future__ import annotations

import collections
import os
import signal
import socket
import sys
import threading
import time

import msgpack
import zmq

from actorium.core.ids import new_worker_id
from actorium.core.wire import protocol, transport
from actorium.gcs.membership import HEARTBEAT_PERIOD
from actorium.raylet import procs, spillback
from actorium.raylet.object_pull import ObjectPuller
from actorium.raylet.rightsizing import RightSizer
from actorium.scheduling import resources as res

STARTING, IDLE, LEASED, ACTOR, DEAD = "starting", "idle", "leased", "actor", "dead"
MAX_STARTING = 4
# A lease is asked back for other owners only after it has been held this long, so
# owners that all have work take turns in slices instead of trading leases every task.
MIN_LEASE_HOLD = 0.1


class Worker:
    __slots__ = ("worker_id", "pid", "state", "task_addr", "owner_addr", "lease_id",
                 "shape", "blocked", "actor_id", "pending_init", "auto")

    def __init__(self, worker_id: bytes):
        self.worker_id = worker_id
        self.pid = 0
        self.state = STARTING
        self.task_addr = ""
        self.owner_addr = ""
        self.lease_id = 0
        self.shape: dict = {}
        self.blocked = False
        self.actor_id = b""
        self.pending_init: bytes = b""
        self.auto = False  # hosts a resources="auto" actor: ``shape`` is measured


class LeaseRequest:
    __slots__ = ("identity", "req_id", "shape", "owner", "warned", "busy_sent", "strategy",
                 "spilled", "node_id")

    def __init__(self, identity, req_id, shape, owner, strategy=None, spilled=False,
                 node_id=""):
        self.identity = identity
        self.req_id = req_id
        self.shape = shape
        self.owner = owner  # the requesting process's owner address
        self.warned = False
        self.busy_sent = False
        self.strategy = strategy
        self.spilled = spilled  # forwarded here by another raylet: answer via ``owner``
        self.node_id = node_id  # the requester's node


class Raylet:
    def __init__(self, *, node_id: str, session_dir: str, gcs_addr: str, total: dict,
                 store, zygote_sock: socket.socket, prestart: int, driver_pid: int = 0,
                 sandbox=None, host: str = "", head: bool = False):
        self.node_id = node_id
        self.session_dir = session_dir
        self.gcs_addr = gcs_addr
        self.total = dict(total)
        self.available = dict(total)
        self.store = store
        self.zygote = zygote_sock
        self.prestart = prestart
        self.driver_pid = driver_pid
        self.host = host  # non-empty: listen on TCP (other nodes must reach this one)
        self.head = head
        self.addr = transport.endpoint(session_dir, host, f"raylet-{node_id}")
        self.data_addr = ""  # host:port of the object data port (TCP nodes)
        self.view = spillback.ClusterView(node_id)
        self.puller = ObjectPuller(self)
        self.workers: dict[bytes, Worker] = {}
        self.by_pid: dict[int, Worker] = {}
        self.requests: collections.deque[LeaseRequest] = collections.deque()
        # lease_id -> (worker, the LeaseRequest it answered, granted at)
        self.leases: dict[int, tuple] = {}
        self.reclaim_due = 0.0  # when a lease too young to ask back becomes old enough
        self.pending_actors: collections.deque = collections.deque()
        self.drivers: dict[bytes, tuple] = {}  # worker_id -> (identity, pid, owner address)
        # Lease ids are unique across raylets: an owner holds leases from several nodes.
        self.next_lease = int.from_bytes(os.urandom(3), "big") << 32
        self.reclaimed: set[int] = set()
        self.stopping = False
        self.sandbox = sandbox  # SandboxRelay (actorium.raylet.sandbox_relay)
        self.sizer = RightSizer(self)
        self.worker_config = {
            "session_dir": session_dir, "node_id": node_id, "raylet_addr": self.addr,
            "gcs_addr": gcs_addr, "store_root": store.root if store else "", "host": host,
        }

    # -- setup ------------------------------------------------------------------
    def start(self) -> None:
        self.router, self.addr = transport.bind_router_at(self.addr)
        self.worker_config["raylet_addr"] = self.addr
        self.gcs = transport.connect_dealer(self.gcs_addr)
        self.data_addr = self.puller.start_data_path(self.host)
        # Registered over the same socket the gcs later pushes StartActor/KillWorker to.
        req = protocol.RegisterNode(
            transport.next_req_id(), self.node_id, self.addr, self.total,
            self.store.root if self.store else "", os.getpid(), protocol.PROTOCOL_VERSION,
            self.head, self.host, self.data_addr)
        self.gcs.send(protocol.encode(req))
        if not self.gcs.poll(30000):
            raise TimeoutError(f"the gcs at {self.gcs_addr} did not answer the node "
                               f"registration within 30s")
        reply = protocol.decode(self.gcs.recv())
        if not reply.ok:
            raise RuntimeError(f"the gcs refused this node: {reply.value}")
        for _ in range(self.prestart):
            self._fork_worker()

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.gcs, zmq.POLLIN)
        poller.register(self.zygote.fileno(), zmq.POLLIN)
        if self.puller.wakeup_fd >= 0:
            poller.register(self.puller.wakeup_fd, zmq.POLLIN)
        sandbox_fd = -1
        handlers = self._handlers()
        next_check = time.monotonic() + 0.5
        next_beat = time.monotonic() + HEARTBEAT_PERIOD
        next_sample = time.monotonic() + self.sizer.period
        while not self.stopping:
            if self.sandbox.fileno() != sandbox_fd:  # lost, or restarted on demand
                if sandbox_fd >= 0:
                    poller.unregister(sandbox_fd)
                sandbox_fd = self.sandbox.fileno()
                if sandbox_fd >= 0:
                    poller.register(sandbox_fd, zmq.POLLIN)
            due = min(next_check, next_beat, next_sample)
            timeout = max(0, int((due - time.monotonic()) * 1000) + 1)
            if self.reclaim_due:
                timeout = max(0, min(timeout, int((self.reclaim_due - time.monotonic()) * 1000) + 1))
            for sock, _ in poller.poll(timeout):
                if sock is self.router:
                    self._drain_router(handlers)
                elif sock is self.gcs:
                    self._drain_gcs(handlers)
                elif sock == sandbox_fd:
                    self.sandbox.readable()
                elif sock == self.puller.wakeup_fd:
                    self.puller.on_wakeup()
                else:
                    self._on_zygote()
            now = time.monotonic()
            if self.reclaim_due and now >= self.reclaim_due:
                self.reclaim_due = 0.0
                self._dispatch()
            if now >= next_sample:
                next_sample = now + self.sizer.period
                self.sizer.sample()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_PERIOD
                self._heartbeat()
            if now >= next_check:
                next_check = now + 0.5
                self._periodic()

    def _heartbeat(self) -> None:
        """Availability, plus what the node autoscaler scales on: the shapes this node
        cannot serve now and how many of its workers are in use."""
        pending = [r.shape for r in self.requests if not res.fits(r.shape, self.available)]
        pending += [a[1] for a in self.pending_actors]
        busy = sum(1 for w in self.workers.values() if w.state in (LEASED, ACTOR))
        self.gcs.send(protocol.encode(protocol.NodeHeartbeat(
            self.node_id, self.available, pending[:100], busy + len(self.requests))))

    def _handlers(self) -> dict:
        p = protocol
        return {
            p.RegisterClient: self.on_register, p.RequestLease: self.on_request_lease,
            p.ReturnLease: self.on_return_lease, p.WorkerBlocked: self.on_blocked,
            p.WorkerUnblocked: self.on_unblocked, p.FreeObjects: self.on_free,
            p.LogBatch: self.on_log, p.StartActor: self.on_start_actor,
            p.KillWorker: self.on_kill_worker, p.NodeStats: self.on_stats,
            p.ListObjects: self.on_list_objects,
            p.ShutdownNode: self.on_shutdown, p.Ping: self.on_ping,
            p.RunSandbox: self.sandbox.on_run, p.CancelSandbox: self.sandbox.on_cancel,
            p.SandboxOpen: self.sandbox.on_open, p.SandboxCall: self.sandbox.on_call,
            p.SandboxClose: self.sandbox.on_close,
            p.ClusterView: lambda _i, msg: spillback.on_cluster_view(self, msg),
            p.NodeUpdate: lambda _i, msg: spillback.on_node_update(self, msg),
            p.PullObject: self.puller.on_pull,
            p.FetchChunk: self.puller.on_fetch,
            p.ObjectChunk: lambda _identity, msg: self.puller.on_chunk(msg, None),
        }

    def _drain_router(self, handlers) -> None:
        for identity, data, payload in transport.pending_frames(self.router):
            if payload is not None:  # only object chunks carry a second frame
                try:
                    msg = protocol.decode(data)
                except protocol.ProtocolError as exc:
                    print(f"raylet: dropped bad message: {exc}", file=sys.stderr)
                    continue
                if isinstance(msg, protocol.ObjectChunk):
                    self.puller.on_chunk(msg, payload)
                continue
            transport.dispatch(handlers, identity, data, "raylet", self.router)

    def _drain_gcs(self, handlers) -> None:
        for _, data in transport.pending(self.gcs, False):
            transport.dispatch(handlers, None, data, "raylet")

    def _reply(self, identity, req_id, value=None, ok=True) -> None:
        transport.reply_to(self.router, identity, req_id, value, ok)

    def _push(self, identity, msg) -> None:
        self.router.send_multipart([identity, protocol.encode(msg)])

    # -- workers ----------------------------------------------------------------
    def _fork_worker(self) -> Worker:
        w = Worker(new_worker_id())
        self.workers[w.worker_id] = w
        self.zygote.send(msgpack.packb({"op": "fork", "worker_id": w.worker_id.hex(),
                                        "config": self.worker_config}))
        return w

    def _on_zygote(self) -> None:
        while True:
            try:
                data = self.zygote.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not data:
                print("raylet: the zygote exited; shutting the node down", file=sys.stderr)
                self.stopping = True
                return
            msg = msgpack.unpackb(data)
            if msg["op"] == "forked":
                w = self.workers.get(bytes.fromhex(msg["worker_id"]))
                if w is not None:
                    w.pid = msg["pid"]
                    self.by_pid[w.pid] = w
            elif msg["op"] == "exited":
                w = self.by_pid.pop(msg["pid"], None)
                if w is not None:
                    self._worker_exited(w, procs.describe_status(msg["status"]))

    def on_register(self, identity, msg) -> None:
        if msg.kind == "driver":
            self.drivers[msg.worker_id] = (identity, msg.pid, msg.owner_addr)
            self._reply(identity, msg.req_id, {"node_id": self.node_id})
            return
        w = self.workers.get(msg.worker_id)
        if w is None:
            self._reply(identity, msg.req_id, "unknown worker", ok=False)
            return
        w.pid = msg.pid
        self.by_pid[msg.pid] = w
        w.task_addr, w.owner_addr = msg.task_addr, msg.owner_addr
        self._reply(identity, msg.req_id, {"node_id": self.node_id})
        if w.pending_init:
            w.state = ACTOR
            transport.send(w.task_addr, protocol.decode(w.pending_init))
            w.pending_init = b""
        else:
            w.state = IDLE
        self._dispatch()

    def _owner_gone(self, owner: str = "", node_id: str = "") -> None:
        """The process holding leases died (or every process of a dead node): kill the
        workers it leased (dropping whatever it had queued on them, which nobody can
        collect now) and forget its requests."""
        def gone(req):
            return req.owner == owner if owner else req.node_id == node_id
        self.requests = collections.deque(r for r in self.requests if not gone(r))
        for w, req, _granted in list(self.leases.values()):
            if gone(req):
                self._kill(w)

    def _worker_exited(self, w: Worker, reason: str) -> None:
        self.sandbox.worker_gone(w.worker_id)
        self.sizer.forget(w)
        if w.owner_addr:
            self._owner_gone(w.owner_addr)
        previous = w.state
        w.state = DEAD
        self.workers.pop(w.worker_id, None)
        if previous == LEASED:
            requester = self.leases.pop(w.lease_id, (None, None, 0))[1]
            self.reclaimed.discard(w.lease_id)
            self._release(w)
            if requester is not None:
                self._answer(requester, protocol.LeaseWorkerDied(w.lease_id, reason))
        elif previous == ACTOR or w.actor_id:
            res.add(self.available, w.shape)
            self.gcs.send(protocol.encode(protocol.ActorWorkerExited(w.actor_id, reason, b"")))
        if not self.stopping:
            self._dispatch()

    # -- leases -----------------------------------------------------------------
    def on_request_lease(self, identity, msg) -> None:
        req = LeaseRequest(identity, msg.req_id, {k: float(v) for k, v in msg.shape.items()},
                           msg.owner, msg.strategy, msg.spilled, msg.node_id)
        self.requests.append(req)
        self._dispatch()

    def _answer(self, req: LeaseRequest, msg) -> None:
        """To the requester: on the socket it asked on, or (a request another raylet
        forwarded here) straight to its owner endpoint."""
        if req.spilled:
            transport.send(req.owner, msg)
        else:
            self._push(req.identity, msg)

    def _dispatch(self) -> None:
        """Grant what fits, in arrival order; start workers when none is idle; send
        requests this node should not serve to the node that should."""
        idle = [w for w in self.workers.values() if w.state == IDLE]
        starting = sum(1 for w in self.workers.values() if w.state == STARTING and not w.pending_init)
        waiting = collections.deque()
        while self.pending_actors:
            actor = self.pending_actors.popleft()
            if res.fits(actor[1], self.available):
                self._launch_actor(actor, idle)
            else:
                waiting.append(actor)
        self.pending_actors = waiting
        blocked = collections.deque()
        while self.requests:
            req = self.requests.popleft()
            fits = res.fits(req.shape, self.available)
            if (not fits or req.strategy) and spillback.route(self, req):
                continue
            if not res.feasible(req.shape, self.total):
                if not req.warned:
                    req.warned = True
                    self._answer(req, protocol.LeaseInfeasible(req.req_id, req.shape, self.total))
                blocked.append(req)
                continue
            if not fits:
                if not req.busy_sent:
                    req.busy_sent = True
                    self._answer(req, protocol.LeaseBusy(req.req_id))
                blocked.append(req)
                continue
            if not idle:
                if starting < MAX_STARTING:
                    self._fork_worker()
                    starting += 1
                blocked.append(req)
                continue
            self._grant(req, idle.pop())
        self.requests = blocked
        if self.requests and self.leases:
            self._ask_back()

    def _grant(self, req: LeaseRequest, w: Worker) -> None:
        lease_id = self.next_lease
        self.next_lease += 1
        w.state, w.lease_id, w.shape, w.blocked = LEASED, lease_id, req.shape, False
        res.subtract(self.available, req.shape)
        self.leases[lease_id] = (w, req, time.monotonic())
        self._answer(req, protocol.LeaseGranted(
            req.req_id, lease_id, w.worker_id, w.task_addr, w.owner_addr))

    def _ask_back(self) -> None:
        """Other owners' work waits: ask holders to return leases once idle. An owner's
        own pending request never reclaims its own leases (that would only churn)."""
        waiting = {r.owner for r in self.requests}
        now = time.monotonic()
        for lease_id, (w, req, granted) in self.leases.items():
            if lease_id in self.reclaimed or (req.owner in waiting and len(waiting) == 1):
                continue
            if now - granted < MIN_LEASE_HOLD:
                due = granted + MIN_LEASE_HOLD
                self.reclaim_due = min(self.reclaim_due, due) if self.reclaim_due else due
                continue
            self.reclaimed.add(lease_id)
            self._answer(req, protocol.ReclaimLease(lease_id))

    def on_return_lease(self, identity, msg) -> None:
        entry = self.leases.pop(msg.lease_id, None)
        self.reclaimed.discard(msg.lease_id)
        if entry is None:
            return
        w = entry[0]
        self._release(w)
        w.state, w.lease_id, w.shape, w.blocked = IDLE, 0, {}, False
        if msg.kill_worker:
            self._kill(w)
        self._dispatch()

    def _release(self, w: Worker) -> None:
        """Give back what a leased worker held (its CPU is already back while blocked)."""
        if w.blocked:
            res.add(self.available, {k: v for k, v in w.shape.items() if k != "CPU"})
        else:
            res.add(self.available, w.shape)

    def on_blocked(self, identity, msg) -> None:
        w = self.workers.get(msg.worker_id)
        if w is None or w.blocked:
            return
        w.blocked = True
        res.add(self.available, res.cpu_part(w.shape))
        self._dispatch()

    def on_unblocked(self, identity, msg) -> None:
        w = self.workers.get(msg.worker_id)
        if w is None or not w.blocked:
            return
        w.blocked = False
        res.subtract(self.available, res.cpu_part(w.shape))

    # -- actors -----------------------------------------------------------------
    def on_start_actor(self, identity, msg) -> None:
        self.pending_actors.append((msg.actor_id, {k: float(v) for k, v in msg.shape.items()},
                                    msg.init, msg.auto))
        self._dispatch()

    def _launch_actor(self, actor, idle: list) -> None:
        actor_id, shape, init, auto = actor
        res.subtract(self.available, shape)
        if idle:
            w = idle.pop()
            w.state, w.actor_id, w.shape, w.auto = ACTOR, actor_id, dict(shape), auto
            transport.send(w.task_addr, protocol.decode(init))
        else:
            w = self._fork_worker()
            w.actor_id, w.shape, w.pending_init, w.auto = actor_id, dict(shape), init, auto
        if sum(1 for x in self.workers.values() if x.state in (IDLE, STARTING)) < self.prestart:
            self._fork_worker()

    def on_kill_worker(self, identity, msg) -> None:
        # An actor still queued here (no room yet) must not start later and hold room.
        self.pending_actors = collections.deque(
            a for a in self.pending_actors if a[0] != msg.actor_id)
        for w in list(self.workers.values()):
            if w.actor_id == msg.actor_id:
                self._kill(w)

    def _kill(self, w: Worker) -> None:
        if w.pid:
            try:
                os.kill(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- objects, logs, status --------------------------------------------------
    def on_free(self, identity, msg) -> None:
        if self.store is not None:
            self.store.delete(msg.object_ids)
        for addr, ids in self.puller.copies(msg.object_ids).items():
            transport.send(addr, protocol.FreeObjects(ids))

    def on_log(self, identity, msg) -> None:
        data = protocol.encode(msg)
        for identity, _pid, _owner in list(self.drivers.values()):
            self.router.send_multipart([identity, data])
        if not msg.relayed:  # drivers attached to other nodes see this node's output too
            msg.relayed = True
            for addr in self.view.addrs():
                transport.send(addr, msg)

    def on_stats(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, {
            "node_id": self.node_id, "total": self.total, "available": self.available,
            "workers": collections.Counter(w.state for w in self.workers.values()),
            "pending_leases": len(self.requests), "pending_actors": len(self.pending_actors),
            "store": self.store.usage() if self.store is not None else {},
            "pulls": dict(self.puller.completed), "data_addr": self.data_addr,
            "actors": self.sizer.info(),
            "config": {k: v for k, v in self.worker_config.items()
                       if k in ("session_dir", "store_capacity", "spill_dir", "host")},
        })

    def on_list_objects(self, identity, msg) -> None:
        objects = self.store.list() if self.store is not None else []
        self._reply(identity, msg.req_id, objects[:max(0, msg.limit)])

    def on_ping(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, self.node_id)

    def on_shutdown(self, identity, msg) -> None:
        self._reply(identity, msg.req_id, True)
        self.stopping = True

    def _periodic(self) -> None:
        self.puller.expire()
        for worker_id, (_identity, pid, owner) in list(self.drivers.items()):
            if not procs.alive(pid):
                del self.drivers[worker_id]
                self._owner_gone(owner)
        if self.driver_pid and not procs.alive(self.driver_pid):
            print(f"raylet: driver {self.driver_pid} is gone; shutting the node down",
                  file=sys.stderr)
            self.stopping = True

    def shutdown(self) -> None:
        gcs = getattr(self, "gcs", None)
        if gcs is not None and not self.head:
            # Say goodbye so the cluster fails our work over now, not after the timeout.
            gcs.send(protocol.encode(protocol.NodeUpdate(
                self.node_id, self.addr, False, "the node was stopped")))
        for w in list(self.workers.values()):
            self._kill(w)
        self.sizer.close()
        self.puller.close()
        try:
            self.zygote.close()
        except OSError:
            pass
        if getattr(self, "router", None) is not None:
            self.router.close(0)
        transport.close_thread_sockets()
        if gcs is not None:
            gcs.close(0 if self.head else 500)
            # Flush the goodbye (bounded by the linger above) before the process exits.
            flusher = threading.Thread(target=transport.context().term, daemon=True)
            flusher.start()
            flusher.join(1.0)

