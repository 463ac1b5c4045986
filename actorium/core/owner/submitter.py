"""Normal-task submission on the owner's I/O thread.

The owner leases workers from its raylet once per resource shape and pushes tasks
straight to them, pipelined up to ``PIPELINE_DEPTH`` per worker. A lease is kept while
work keeps coming (and briefly after, so a loop of synchronous calls does not pay a
lease round trip per task) and is returned when idle, or at once when the raylet asks
for it back because other work waits.

A task's lifecycle (resolving -> queued -> pushed -> finished, retries going back to
queued) is the owner's TaskTable (task_state.py): every step here is a transition there.
Only the I/O thread touches this state.
"""
from __future__ import annotations

import collections
import sys

from actorium.core.objects import stream
from actorium.core.objects.object_ref import ObjectRef
from actorium.core.objects.serialization import VALUE_ERROR, load_error
from actorium.core.owner.task_state import PUSHED, QUEUED, RESOLVING
from actorium.core.wire import protocol, transport
from actorium.exceptions import TaskCancelledError, WorkerCrashedError

PIPELINE_DEPTH = 16  # per worker, only once the node is full (see ShapeQueue.saturated)
MAX_LEASES_PER_SHAPE = 64
IDLE_LEASE_SECONDS = 1.0


class Lease:
    __slots__ = ("lease_id", "worker_id", "task_addr", "worker_owner", "inflight", "reclaim",
                 "key", "idle_token", "raylet")

    def __init__(self, lease_id, worker_id, task_addr, worker_owner, key, raylet=""):
        self.lease_id = lease_id
        self.worker_id = worker_id
        self.task_addr = task_addr
        self.worker_owner = worker_owner
        self.inflight: dict = {}
        self.reclaim = False
        self.key = key
        self.idle_token = 0
        self.raylet = raylet  # "" for our own node's raylet, else the granting raylet


class ShapeQueue:
    """Tasks of one resource shape waiting for a worker, and the leases serving them.

    While more workers may still be granted, each leased worker gets one task at a time
    so that slow tasks spread over all CPUs. Once the raylet says the node is full
    (``saturated``), tasks are pipelined up to PIPELINE_DEPTH per worker, which hides the
    round trip for short tasks."""
    __slots__ = ("shape", "queue", "leases", "requests", "saturated", "strategy")

    def __init__(self, shape, strategy=None):
        self.shape = shape
        self.strategy = strategy
        self.queue: collections.deque = collections.deque()
        self.leases: list[Lease] = []
        # outstanding lease request ids -> the raylet asked ("" for ours)
        self.requests: dict[int, str] = {}
        self.saturated = False


class TaskSubmitter:
    def __init__(self, worker):
        self.w = worker
        self.shapes: dict = {}
        self.leases: dict[int, Lease] = {}
        self._infeasible_warned: set = set()
        self._requests: dict[int, ShapeQueue] = {}  # lease request id -> its queue

    # -- entry points (I/O thread) -------------------------------------------
    def submit(self, spec, why: str = "submitted") -> None:
        self.w.tasks.transition(spec, RESOLVING, why)
        if spec.cancelled:
            self.w.fail(spec, TaskCancelledError(f"task {spec.name} was cancelled"))
            return
        self.resolve(spec, self._enqueue)

    def resolve(self, spec, then, on_failed=None) -> None:
        """Resolve top-level ref arguments, then call ``then(spec)``; a failed argument
        fails the task with the same error (errors flow through dependencies), after
        which ``on_failed(spec)`` runs instead of ``then``."""
        if not spec.slots:
            then(spec)
            return
        spec.pending_deps = len(spec.slots)
        spec.resolved = [None] * len(spec.slots)
        w = self.w

        def on_value(index, value):
            spec.resolved[index] = [index, *value]
            if value[0] == VALUE_ERROR and not spec.failed:
                spec.failed = True
                w.complete(spec, [value])
                if on_failed is not None:
                    on_failed(spec)
                return
            spec.pending_deps -= 1
            if spec.pending_deps == 0 and not spec.failed:
                then(spec)

        for index, ref in spec.slots:
            cb = (lambda i: (lambda _oid, value: on_value(i, value)))(index)
            value = w.refs.add_waiter(ref.id, ref.owner, cb)
            if value is not None:
                on_value(index, value)
                if spec.failed:
                    return
            elif ref.owner != w.owner_addr:
                w.request_from_owner(ref.id, ref.owner)

    def _enqueue(self, spec) -> None:
        if spec.cancelled:
            return  # cancelled while its arguments were pending: already failed
        self.w.tasks.transition(spec, QUEUED, "arguments ready")
        q = self.shapes.get(spec.key)
        if q is None:
            q = self.shapes[spec.key] = ShapeQueue(spec.shape, spec.strategy)
        q.queue.append(spec)
        self._pump(q)

    def _pump(self, q: ShapeQueue) -> None:
        queue = q.queue
        depth = PIPELINE_DEPTH if q.saturated or len(q.leases) >= MAX_LEASES_PER_SHAPE else 1
        if q.strategy == "SPREAD":
            depth = 1  # one task per lease: each task is placed on its own
        while queue:
            best = None
            for lease in q.leases:
                if not lease.reclaim and len(lease.inflight) < depth and (
                        best is None or len(lease.inflight) < len(best.inflight)):
                    best = lease
            if best is None:
                break
            spec = queue.popleft()
            if spec.cancelled:
                self.w.fail(spec, TaskCancelledError(f"task {spec.name} was cancelled"))
                continue
            self._push(best, spec)
        if queue and not q.requests and len(q.leases) < MAX_LEASES_PER_SHAPE:
            self._request_lease(q)
        elif not queue and q.requests:
            pass  # a late grant with no work is returned on arrival

    def _push(self, lease: Lease, spec) -> None:
        spec.lease = lease
        lease.inflight[spec.task_id] = spec
        self.w.tasks.transition(spec, PUSHED, "pushed to a leased worker")
        transport.send(lease.task_addr, protocol.PushTask(
            spec.task_id, spec.fn_id, spec.name, spec.args,
            spec.resolved,
            spec.num_returns, self.w.owner_addr, spec.job, spec.retry_exceptions is not False,
            self.w.namespace))

    def _request_lease(self, q: ShapeQueue) -> None:
        req_id = transport.next_req_id()
        q.requests[req_id] = ""
        self._requests[req_id] = q
        self.w._send_raylet(protocol.RequestLease(req_id, q.shape, self.w.owner_addr,
                                                  q.strategy, False, self.w.node_id))

    def on_lease_spillback(self, msg) -> None:
        """Our raylet sent us to another node: ask there (it answers to our endpoint)."""
        q = self._requests.get(msg.req_id)
        if q is None:
            return
        if msg.raylet_addr in self.w.dead_raylets:
            self._drop_request(msg.req_id)
            return
        q.requests[msg.req_id] = msg.raylet_addr
        transport.send(msg.raylet_addr, protocol.RequestLease(
            msg.req_id, q.shape, self.w.owner_addr, q.strategy, True, self.w.node_id))

    def _drop_request(self, req_id: int) -> None:
        q = self._requests.pop(req_id, None)
        if q is not None:
            q.requests.pop(req_id, None)
            self._pump(q)

    def on_lease_rejected(self, msg) -> None:
        from actorium.exceptions import TaskUnschedulableError
        q = self._requests.pop(msg.req_id, None)
        if q is None:
            return
        q.requests.pop(msg.req_id, None)
        while q.queue:
            self.w.fail(q.queue.popleft(), TaskUnschedulableError(msg.reason))

    def on_node_dead(self, raylet_addr: str, ours: bool = False) -> None:
        """Leases from a dead node are dead workers; requests sent there are re-asked.
        ``ours``: it was this process's own node (leases and requests marked "")."""
        dead = {raylet_addr, ""} if ours else {raylet_addr}
        for lease in [x for x in self.leases.values() if x.raylet in dead]:
            self.on_lease_worker_died(protocol.LeaseWorkerDied(
                lease.lease_id, f"its node ({raylet_addr}) died"))
        for req_id, q in list(self._requests.items()):
            if q.requests.get(req_id) in dead:
                self._drop_request(req_id)

    def _send_lease_return(self, lease: Lease) -> None:
        msg = protocol.ReturnLease(lease.lease_id, False)
        if lease.raylet:
            transport.send(lease.raylet, msg)
        else:
            self.w._send_raylet(msg)

    # -- raylet messages ----------------------------------------------------
    def on_lease_granted(self, msg) -> None:
        q = self._requests.pop(msg.req_id, None)
        if q is None:
            self.w._send_raylet(protocol.ReturnLease(msg.lease_id, False))
            return
        raylet = q.requests.pop(msg.req_id, "")
        q.saturated = False
        lease = Lease(msg.lease_id, msg.worker_id, msg.task_addr, msg.owner_addr, q, raylet)
        self.leases[msg.lease_id] = lease
        q.leases.append(lease)
        if not q.queue:
            self._return(lease)
            return
        self._pump(q)

    def on_lease_busy(self, msg) -> None:
        q = self._requests.get(msg.req_id)
        if q is not None:
            q.saturated = True
            self._pump(q)

    def on_lease_infeasible(self, msg) -> None:
        key = tuple(sorted(msg.shape.items()))
        if key not in self._infeasible_warned:
            self._infeasible_warned.add(key)
            print(f"actorium: warning: a task needs {msg.shape} but the cluster has "
                  f"{msg.total} in total; it stays pending until such a node joins.",
                  file=sys.stderr)

    def on_reclaim(self, msg) -> None:
        lease = self.leases.get(msg.lease_id)
        if lease is None:
            return
        lease.reclaim = True
        if not lease.inflight:
            self._return(lease)

    def on_lease_worker_died(self, msg) -> None:
        lease = self.leases.pop(msg.lease_id, None)
        if lease is None:
            return
        q = lease.key
        q.leases.remove(lease)
        for spec in list(lease.inflight.values()):
            spec.lease = None
            if spec.cancelled:
                self.w.fail(spec, TaskCancelledError(f"task {spec.name} was cancelled"))
            elif spec.retries_left != 0 and (spec.stream is None
                                             or spec.num_returns == "dynamic"):
                # a dynamic generator's ref is set only at its end: it can run again
                spec.retries_left -= 1
                self.w.tasks.transition(spec, QUEUED, "retry: its worker died")
                q.queue.appendleft(spec)
            else:
                self.w.fail(spec, WorkerCrashedError(
                    f"The worker running task {spec.name} died ({msg.reason}) and no "
                    f"retries are left."))
        self._pump(q)

    # -- replies --------------------------------------------------------------
    def on_reply(self, spec, msg) -> None:
        lease = spec.lease
        if lease is not None:
            lease.inflight.pop(spec.task_id, None)
        results = msg.results
        if results and results[0][0] == VALUE_ERROR and self._should_retry(spec, results[0][1]):
            spec.retries_left -= 1
            spec.lease = None
            self.w.tasks.transition(spec, QUEUED, "retry: it raised a retryable exception")
            lease.key.queue.append(spec)
        elif spec.stream is not None:
            self.w.complete(spec, *stream.end(spec, results, msg.contained))
        else:
            self.w.complete(spec, results, msg.contained)
        if lease is not None:
            q = lease.key
            if q.strategy == "SPREAD":
                lease.reclaim = True  # a SPREAD lease serves one task, then goes back
            if q.queue:
                self._pump(q)
            if not lease.inflight and lease.lease_id in self.leases:
                if lease.reclaim:
                    self._return(lease)
                elif not q.queue:
                    lease.idle_token += 1
                    self.w.call_later(IDLE_LEASE_SECONDS, self._return_if_idle, lease,
                                      lease.idle_token)

    def _should_retry(self, spec, blob) -> bool:
        if spec.retries_left == 0 or spec.cancelled or spec.retry_exceptions is False:
            return False
        err = load_error(blob)
        if not err.user_error:
            return False
        if spec.retry_exceptions is True:
            return True
        return err.exception is not None and isinstance(err.exception, tuple(spec.retry_exceptions))

    def on_stream_item(self, msg) -> None:
        spec = self.w.tasks.pushed.get(msg.task_id)
        if spec is None or spec.stream is None or spec.stream.has(msg.index):
            return  # a re-delivered call re-sends the items before its crash: keep the first
        from actorium.core.ids import object_id_for
        oid = object_id_for(spec.task_id, msg.index + 1)
        ref = ObjectRef(oid, self.w.owner_addr)
        self.w.refs.set_value(oid, msg.result)
        spec.stream.add(msg.index, ref)

    def _return_if_idle(self, lease: Lease, token: int) -> None:
        if lease.idle_token == token and not lease.inflight and lease.lease_id in self.leases:
            self._return(lease)

    def _return(self, lease: Lease) -> None:
        if self.leases.pop(lease.lease_id, None) is None:
            return
        lease.key.leases.remove(lease)
        self._send_lease_return(lease)
        if lease.key.queue:
            self._pump(lease.key)

    def return_all_leases(self) -> None:
        for lease in list(self.leases.values()):
            self._return(lease)

    # -- cancellation ---------------------------------------------------------
    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> None:
        """Cancel a task of ours. On a worker: that worker interrupts it (and cancels
        its children when ``recursive``) and replies TaskCancelledError; anywhere
        else (waiting for its arguments, queued for a lease): it fails now and never
        runs. A finished task is not in ``live``: nothing happens."""
        spec = self.w.tasks.live.get(task_id)
        if spec is None or spec.cancelled:
            return
        spec.cancelled = True
        spec.retries_left = 0
        if spec.lease is not None:
            transport.send(spec.lease.worker_owner,
                           protocol.CancelTask(task_id, force, recursive))
            return
        q = self.shapes.get(spec.key)
        if q is not None and spec in q.queue:
            q.queue.remove(spec)
        self.w.fail(spec, TaskCancelledError(f"task {spec.name} was cancelled"))

    def cancel_children(self, parent: bytes, force: bool) -> None:
        """``recursive`` cancel: every unfinished task and actor call ``parent`` made."""
        for spec in [s for s in self.w.tasks.live.values() if s.parent == parent]:
            if spec.kind == "task":
                self.cancel(spec.task_id, force, True)
            elif spec.kind == "actor":
                self.w.actors.cancel(spec)
