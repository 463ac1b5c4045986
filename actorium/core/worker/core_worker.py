"""The core worker: the runtime inside every driver and worker process.

One I/O thread owns the process's ``owner endpoint`` (a ROUTER every peer sends
replies and requests to) plus DEALERs to the node's raylet and to the gcs. API calls
from user threads build specs and post them to the I/O thread; every object value
transition happens on the I/O thread, so waiters fire in one place.
"""
from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import heapq
import itertools
import os
import threading
import time
import traceback

import cloudpickle
import zmq

from actorium.core import stats
from actorium.core.ids import new_put_id, new_worker_id
from actorium.core.objects import object_ref, serialization
from actorium.core.objects.object_ref import ObjectRef
from actorium.core.objects.serialization import VALUE_ERROR, VALUE_INLINE, VALUE_STORED
from actorium.core.owner import reconnect, remote_objects
from actorium.core.owner.actor_submitter import ActorSubmitter
from actorium.core.owner.ownership import ReferenceTable
from actorium.core.owner.submitter import TaskSubmitter
from actorium.core.owner.task_state import FINISHED, TaskTable
from actorium.core.wire import protocol, transport
from actorium.exceptions import GetTimeoutError, ObjectStoreFullError


STATS_PERIOD = 1.0  # seconds between a process's metrics reports


class _Waiter:
    """Counts down as values arrive; ``wait`` blocks the calling thread."""
    __slots__ = ("remaining", "event", "lock")

    def __init__(self, count: int):
        self.remaining = count
        self.event = threading.Event()
        self.lock = threading.Lock()
        if count <= 0:
            self.event.set()

    def __call__(self, object_id, value):
        with self.lock:
            self.remaining -= 1
            if self.remaining == 0:
                self.event.set()


class CoreWorker:
    def __init__(self, *, kind: str, session_dir: str, job: str, node_id: str,
                 raylet_addr: str, gcs_addr: str, store_root: str, namespace: str = "",
                 worker_id: bytes | None = None, store_capacity: int = 0,
                 spill_dir: str | None = None, host: str = ""):
        self.kind = kind
        self.job = job
        self.namespace = namespace
        self.node_id = node_id
        self.session_dir = session_dir
        self.raylet_addr = raylet_addr
        self.gcs_addr = gcs_addr
        self.store_root = store_root
        self.store_capacity = store_capacity
        self.spill_dir = spill_dir
        self.restarts = 0
        self.worker_id = worker_id or new_worker_id()
        self.host = host  # non-empty: a multi-node cluster, our endpoint is TCP
        # Bound here (not on the I/O thread) because a TCP endpoint's port is known only
        # once bound, and the reference table needs our address; the I/O thread owns the
        # socket from its start on.
        self._router, self.owner_addr = transport.bind_router_at(
            transport.endpoint(session_dir, host, f"o-{self.worker_id.hex()}"))
        self.refs = ReferenceTable(self.owner_addr, self._free_stored)
        self.lineage: dict[bytes, object] = {}  # object id -> spec that can rebuild it
        self.dead_raylets: set[str] = set()
        self.owner_checks: dict[str, bool] = {}  # since the last node death
        self._store = None
        self._outbox: collections.deque = collections.deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_pending = False
        self._timers: list = []
        self._req_callbacks: dict[int, object] = {}
        self._exported: set[bytes] = set()
        self._export_lock = threading.Lock()
        self._stopping = False
        self._ready = threading.Event()
        self._io_error: BaseException | None = None
        self.on_block = None  # set by a worker's executor: callables notifying the raylet
        self.on_unblock = None
        self.on_cancel = None
        self.current_task_id = b""
        self.current_actor_id = b""
        self.log_sink = None  # drivers print worker output through this
        self.tasks = TaskTable()
        self.submitter = TaskSubmitter(self)
        self.actors = ActorSubmitter(self)
        self._handlers = self._build_handlers()
        self._thread = threading.Thread(target=self._io_main, name="actorium-io", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._io_error is not None:
            raise self._io_error

    # -- object store -------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from actorium.objectstore import ObjectStore
            self._store = ObjectStore(self.store_root, capacity=self.store_capacity,
                                      spill_dir=self.spill_dir, create=False)
        return self._store

    def _free_stored(self, object_ids: list, location: str = "") -> None:
        for oid in object_ids:
            self.lineage.pop(oid, None)
        if location and location != self.raylet_addr:
            self.post(transport.send, location, protocol.FreeObjects(list(object_ids)))
        else:
            self.post(self._send_raylet, protocol.FreeObjects(list(object_ids)))

    # -- I/O thread ---------------------------------------------------------
    def post(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the I/O thread, in posting order."""
        self._outbox.append((fn, args))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                os.eventfd_write(self._wake_fd, 1)
            except OSError:
                pass

    def call_later(self, delay: float, fn, *args) -> None:
        """I/O thread only: run ``fn`` after ``delay`` seconds."""
        heapq.heappush(self._timers, (time.monotonic() + delay, id(fn), fn, args))

    def request(self, sock_name: str, msg, callback) -> None:
        """I/O thread only: send a request on the raylet or gcs DEALER; ``callback(reply)``."""
        self._req_callbacks[msg.req_id] = callback
        (self.raylet_sock if sock_name == "raylet" else self.gcs_sock).send(
            protocol.encode(msg), copy=False)

    def request_sync(self, sock_name: str, msg, timeout: float = 30.0):
        """From a user thread: send ``msg`` on the I/O thread's raylet or gcs socket and
        wait for its Reply. Anything that peer pushed to us on that socket before the
        reply (e.g. actor updates) has been handled when this returns."""
        done = threading.Event()
        box = []

        def on_reply(reply):
            box.append(reply)
            done.set()
        self.post(self.request, sock_name, msg, on_reply)
        if not done.wait(timeout):
            self.post(self._req_callbacks.pop, msg.req_id, None)
            raise TimeoutError(f"no answer from the {sock_name} within {timeout:g}s to {msg.op}")
        reply = box[0]
        if not reply.ok:
            raise transport.RpcError(reply.value)
        return reply.value

    def _send_raylet(self, msg) -> None:
        self.raylet_sock.send(protocol.encode(msg), copy=False)

    def _send_gcs(self, msg) -> None:
        self.gcs_sock.send(protocol.encode(msg), copy=False)

    def _io_main(self) -> None:
        try:
            self.router = self._router
            self.raylet_sock = transport.connect_dealer(self.raylet_addr)
            self.gcs_sock = transport.connect_dealer(self.gcs_addr)
            if self.host:  # other nodes exist: learn when one dies, notice a head restart
                reconnect.start(self)
        except BaseException as exc:
            self._io_error = exc
            self._ready.set()
            return
        poller = self._poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.raylet_sock, zmq.POLLIN)
        poller.register(self.gcs_sock, zmq.POLLIN)
        poller.register(self._wake_fd, zmq.POLLIN)
        self._ready.set()
        self.call_later(STATS_PERIOD, self._report_stats)
        router, gcs = self.router, self.gcs_sock
        while not self._stopping:
            raylet = self.raylet_sock  # replaced when a driver re-attaches (reconnect.py)
            timeout = None
            if self._timers:
                timeout = max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)
            try:
                events = poller.poll(timeout)
            except zmq.ZMQError:
                break
            for sock, _ in events:
                if sock is router:
                    self._drain(router, True)
                elif sock is raylet or sock is gcs:
                    self._drain(sock, False)
                else:
                    try:
                        os.eventfd_read(self._wake_fd)
                    except (BlockingIOError, OSError):
                        pass
            self._run_outbox()
            if self._timers:
                self._run_timers()
        for sock in (router, self.raylet_sock, gcs):
            sock.close(0)
        transport.close_thread_sockets()

    def _report_stats(self, again: bool = True) -> None:
        """I/O thread: send what this process counted since the last report (one
        message a second at most, never one per call; actorium/core/stats.py)."""
        delta = stats.take()
        if delta is not None:
            try:
                self._send_raylet(protocol.MetricsReport(os.getpid(), self.kind, delta))
            except zmq.ZMQError:
                pass
        if again:
            self.call_later(STATS_PERIOD, self._report_stats)

    def _run_outbox(self) -> None:
        self._wake_pending = False
        outbox = self._outbox
        while outbox:
            fn, args = outbox.popleft()
            try:
                fn(*args)
            except Exception:
                traceback.print_exc()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn, args = heapq.heappop(self._timers)
            try:
                fn(*args)
            except Exception:
                traceback.print_exc()

    def _drain(self, sock, is_router: bool) -> None:
        # Bounded, so one flooding peer cannot starve the outbox and timers.
        for identity, data in itertools.islice(transport.pending(sock, is_router), 10000):
            transport.dispatch(self._handlers, identity, data, "actorium")

    def _build_handlers(self) -> dict:
        """Message type -> handler(identity, msg); the core worker's handlers only need
        the message (answers go to addresses carried in it)."""
        p = protocol
        table = {
            p.TaskReply: self._on_task_reply,
            p.StreamItem: self.submitter.on_stream_item,
            p.GetObject: self._on_get_object,
            p.ObjectValue: self._on_object_value,
            p.AddBorrower: lambda m: self.refs.borrower_delta(m.object_id, m.borrower, 1),
            p.RemoveBorrower: lambda m: self.refs.borrower_delta(m.object_id, m.borrower, -1),
            p.LeaseGranted: self.submitter.on_lease_granted,
            p.LeaseWorkerDied: self.submitter.on_lease_worker_died,
            p.LeaseInfeasible: self.submitter.on_lease_infeasible,
            p.LeaseBusy: self.submitter.on_lease_busy,
            p.ReclaimLease: self.submitter.on_reclaim,
            p.ActorUpdate: self.actors.on_actor_update,
            p.LogBatch: self._on_log_batch,
            p.CancelTask: self._on_cancel_task,
            p.Reply: self._on_reply,
            p.LeaseSpillback: self.submitter.on_lease_spillback,
            p.LeaseRejected: self.submitter.on_lease_rejected,
            p.NodeUpdate: self._on_node_update,
        }
        return transport.message_only(table)

    def _on_reply(self, msg) -> None:
        cb = self._req_callbacks.pop(msg.req_id, None)
        if cb is not None:
            cb(msg)

    def _on_task_reply(self, msg) -> None:
        spec = self.tasks.pushed.get(msg.task_id)
        if spec is None:  # a late or repeated reply
            self._discard_results(msg.results)
            return
        if spec.kind == "task":
            self.submitter.on_reply(spec, msg)
        else:
            self.actors.on_reply(spec, msg)

    def _discard_results(self, results) -> None:
        for r in results:
            if r[0] == VALUE_STORED:
                self._free_stored([r[1]], r[3] if len(r) > 3 else "")

    def complete(self, spec, results: list, contained=(), why: str = "replied") -> None:
        """I/O thread: publish a finished task's results to its return refs."""
        self.tasks.transition(spec, FINISHED, why)
        stats.count(stats.failed if results and results[0][0] == VALUE_ERROR
                    else stats.finished, spec.name)
        refs = self.refs
        if contained:
            contained = [self._adopt(oid, owner) for oid, owner in contained]
        for i, oid in enumerate(spec.return_ids):
            value = results[i] if i < len(results) else results[-1]
            if not refs.set_value(oid, value, contained if i == 0 else ()):
                if value[0] == VALUE_STORED:
                    self._free_stored([value[1]], value[3] if len(value) > 3 else "")
            elif value[0] == VALUE_STORED and spec.kind == "task" and spec.retries_left != 0 \
                    and self.host:  # only other nodes' copies can be lost on their own
                self.lineage[oid] = spec  # a lost copy can be rebuilt by running it again
                spec.lineage = True
        if not spec.lineage:
            spec.holds = []  # lineage keeps the arguments alive, as Ray's lineage pinning

    def _adopt(self, object_id: bytes, owner: str) -> ObjectRef:
        ref = ObjectRef(object_id, owner)
        if owner != self.owner_addr:
            self.refs.adopt_borrow(object_id, owner)
        return ref

    def fail(self, spec, exc: BaseException, user_error: bool = False) -> None:
        blob = serialization.error_blob(exc, spec.name, os.getpid(), user_error=user_error)
        self.complete(spec, [[VALUE_ERROR, blob, 0]], why=f"failed: {type(exc).__name__}")

    def _on_get_object(self, msg) -> None:
        def send(object_id, value):
            transport.send(msg.reply_to, protocol.ObjectValue(object_id, value))
        value = self.refs.add_waiter(msg.object_id, self.owner_addr, send)
        if value is not None:
            send(msg.object_id, value)

    def read_stored(self, object_id: bytes, value) -> memoryview:
        return remote_objects.read_stored(self, object_id, value)

    def _on_node_update(self, msg) -> None:
        remote_objects.on_node_update(self, msg)

    def _on_object_value(self, msg) -> None:
        self.refs.set_value(msg.object_id, msg.result)

    def request_from_owner(self, object_id: bytes, owner: str) -> None:
        """I/O thread: ask a remote owner for a value once."""
        with self.refs.lock:
            e = self.refs.entries.get(object_id)
            if e is None or e.requested or e.value is not None:
                return
            e.requested = True
        if self.dead_raylets and not remote_objects.owner_alive(self, owner):
            remote_objects.fail_owner_died(self, owner, [object_id])
            return
        transport.send(owner, protocol.GetObject(object_id, self.owner_addr))

    def _on_log_batch(self, msg) -> None:
        if msg.job and msg.job != self.job:
            return
        sink = self.log_sink
        if sink is not None:
            sink(msg)

    def _on_cancel_task(self, msg) -> None:
        if self.on_cancel is not None:
            self.on_cancel(msg.task_id, msg.force)
        if msg.recursive:
            self.submitter.cancel_children(msg.task_id, msg.force)

    # -- functions ----------------------------------------------------------
    def export(self, obj) -> bytes:
        """Put a function or class into the gcs function table once; return its id."""
        data = serialization.dumps_class(obj) if isinstance(obj, type) else cloudpickle.dumps(obj)
        if len(data) > serialization.FUNCTION_SIZE_WARN:
            serialization.check_function_size(obj, len(data))
        fn_id = hashlib.sha1(data).digest()[:16]
        if fn_id in self._exported:
            return fn_id
        with self._export_lock:
            if fn_id not in self._exported:
                self.rpc_gcs(protocol.KvPut(transport.next_req_id(), b"fn:" + fn_id, data, False))
                self._exported.add(fn_id)
        return fn_id

    def rpc_gcs(self, msg, timeout: float = 30.0):
        return transport.rpc(self.gcs_addr, msg, timeout, what="the gcs")

    def rpc_raylet(self, msg, timeout: float = 30.0):
        return transport.rpc(self.raylet_addr, msg, timeout, what="the raylet")

    # -- objects: put / get / wait -----------------------------------------
    def put(self, value) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError("Calling put() on an ObjectRef is not allowed: "
                            "pass the ref itself instead.")
        return self.put_serialized(serialization.serialize(value))

    def put_serialized(self, ser) -> ObjectRef:
        """Own an already serialized value (a large call argument, arguments.py)."""
        oid = new_put_id()
        ref = ObjectRef(oid, self.owner_addr)
        self._store_value(oid, ser)
        return ref

    def _store_value(self, oid: bytes, ser) -> list:
        """Record an owned value: inline in memory if small, else in the node store."""
        if ser.size <= serialization.INLINE_MAX:
            value = [VALUE_INLINE, ser.to_bytes(), ser.size]
        else:
            value = [VALUE_STORED, oid, ser.size, self.raylet_addr]
            self.store_put(oid, ser.parts)
        with self.refs.lock:
            e = self.refs.ensure(oid, self.owner_addr)
            e.value = value
            e.contained = ser.contained
        return value

    def store_put(self, oid: bytes, parts) -> None:
        try:
            self.store.put(oid, parts, owner=self.worker_id)
        except Exception as exc:
            if type(exc).__name__ == "ObjectStoreFullError":
                raise ObjectStoreFullError(str(exc)) from None
            raise

    def materialize(self, object_id: bytes, value: list):
        kind, data = value[0], value[1]
        if kind == VALUE_INLINE:
            return serialization.deserialize(data)
        if kind == VALUE_STORED:
            return serialization.deserialize(self.read_stored(data, value))
        if kind == VALUE_ERROR:
            raise serialization.load_error(data).to_exception()
        raise RuntimeError(f"unknown value kind {kind}")

    def _wait_values(self, refs: list, count: int, timeout: float | None) -> bool:
        """Block until ``count`` of ``refs`` have values. False on timeout."""
        waiter = _Waiter(count)
        missing = []
        for ref in refs:
            if self.refs.add_waiter(ref.id, ref.owner, waiter) is not None:
                waiter(ref.id, None)
            elif ref.owner != self.owner_addr:
                missing.append(ref)
        for ref in missing:
            self.post(self.request_from_owner, ref.id, ref.owner)
        if waiter.event.is_set():
            return True
        blocked = self.on_block is not None
        if blocked:
            self.on_block()
        try:
            return waiter.event.wait(timeout)
        finally:
            if blocked:
                self.on_unblock()

    def get(self, refs: list, timeout: float | None):
        get_value = self.refs.get_value
        values = [get_value(r.id) for r in refs]
        pending = [r for r, v in zip(refs, values) if v is None]
        if pending:
            if not self._wait_values(pending, len(pending), timeout):
                raise GetTimeoutError(
                    f"Get timed out: {len([r for r in pending if get_value(r.id) is None])} "
                    f"of {len(refs)} object(s) not ready after {timeout}s.")
            values = [get_value(r.id) for r in refs]
        return [remote_objects.materialize_or_rebuild(self, r, v, timeout)
                for r, v in zip(refs, values)]

    def wait(self, refs: list, num_returns: int, timeout: float | None,
             fetch_local: bool = True):
        get_value = self.refs.get_value
        deadline = None if timeout is None else time.monotonic() + timeout
        ready_now = sum(1 for r in refs if get_value(r.id) is not None)
        if ready_now < num_returns:
            self._wait_values(refs, num_returns, timeout)
        ready, not_ready = [], []
        for r in refs:
            (ready if len(ready) < num_returns and get_value(r.id) is not None
             else not_ready).append(r)
        late = remote_objects.fetch_local(self, [(r.id, get_value(r.id)) for r in ready],
                                          deadline) if fetch_local and ready else ()
        if late:  # not here by the deadline: not ready yet (in the caller's order)
            ready = [r for r in ready if r.id not in late]
            ready_ids = {r.id for r in ready}
            not_ready = [r for r in refs if r.id not in ready_ids]
        return ready, not_ready

    def future_for(self, ref: ObjectRef) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def resolve(object_id, value, _keep=ref):
            # _keep: an awaited temporary ref must live until its value arrives.
            try:
                fut.set_result(self.materialize(object_id, value))
            except BaseException as exc:  # the stored error is the future's outcome
                fut.set_exception(exc)
        value = self.refs.add_waiter(ref.id, ref.owner, resolve)
        if value is not None:
            resolve(ref.id, value)
        elif ref.owner != self.owner_addr:
            self.post(self.request_from_owner, ref.id, ref.owner)
        return fut

    # -- lifecycle ----------------------------------------------------------
    def shutdown(self) -> None:
        if self._stopping:
            return
        done = threading.Event()

        def stop():
            self.submitter.return_all_leases()
            self._report_stats(again=False)
            self._stopping = True
            done.set()
        self.post(stop)
        done.wait(5)
        self._stopping = True
        self._thread.join(5)
        if self._store is not None:
            self._store.close()
        try:
            os.close(self._wake_fd)
        except OSError:
            pass


def set_global_worker(worker) -> None:
    object_ref._worker = worker


def global_worker():
    return object_ref._worker
