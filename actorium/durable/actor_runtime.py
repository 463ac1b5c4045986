"""The executing side of a durable actor (``checkpoint=`` or a session): runs each call
under a journal Call, checkpoints state, answers re-delivered calls that already
completed from their cached reply, and logs a session's requests and results.

Order for one call (the actor runs one call at a time):
1. a call that completed and was checkpointed before a crash (its id is in ``recent``)
   gets its cached reply, without running again;
2. a session's "request" event is queued on the call; it is written (deduplicated by
   the call's id) with the call's first durable write: a step's intent, an emit, or
   at the latest the reply's commit, so a call without steps costs one fsync;
3. the method runs; its steps are journaled under (scope, call id, step position);
4. if a checkpoint is due, the state is snapshotted in memory; the snapshot, the reply
   and the "result" event go to the ReplyWriter (writer.py), which makes them durable
   in one transaction before it sends the reply.
A crash before the writer's commit re-runs the call from the previous checkpoint with
its journal; a crash after it answers the call from 1. Either way one result.
"""
from __future__ import annotations

from actorium.core import runtimes
from actorium.core.objects import serialization
from actorium.core.objects.serialization import VALUE_ERROR, VALUE_STORED
from actorium.core.wire import protocol, transport
from actorium.durable import checkpoint as ckpt
from actorium.durable import context, journal
from actorium.durable.writer import Pending, ReplyWriter
from actorium.exceptions import CheckpointError

RECENT_IN_MEMORY = 1024  # caller-given request ids remembered as possibly answered


def _label(request: bytes) -> str:
    """A request as the event log shows it: the caller's id, or the task id in hex."""
    return request[3:].decode(errors="replace") if request.startswith(b"id:") else request.hex()


class DurableActor:
    def __init__(self, executor, config: dict):
        self.ex = executor
        self.scope: bytes = config["scope"]
        self.session: str = config.get("session") or ""
        pol = config.get("checkpoint")
        self.schedule = ckpt.Schedule(pol) if pol else None
        self.recent: dict[bytes, None] = {}  # requests that may have a cached reply, in order
        self.writer = ReplyWriter(self.scope, executor)

    def _logged(self, msg) -> bool:
        """Session calls are logged, except the runtime's own (park's barrier call)."""
        return bool(self.session) and not msg.method.startswith("__actorium")

    # -- start-up -----------------------------------------------------------------
    def restore(self) -> None:
        """Load the latest checkpoint into the fresh instance (runs before ActorReady)."""
        if self.schedule is None:
            return
        record = context.rpc(protocol.CheckpointGet(transport.next_req_id(), self.scope),
                             "the read of the latest checkpoint")
        if record is None:
            return
        self.recent = dict.fromkeys(record["recent"])
        ckpt.restore(self.ex.instance, record["state"])

    # -- one call -------------------------------------------------------------------
    def call(self, msg) -> None:
        ex = self.ex
        ex.running = msg.task_id
        request = msg.request_key or msg.task_id
        call = ex.step_call = context.Call(self.scope, request, self.session, msg.task_id)
        name = f"{ex.actor_name}.{msg.method}"
        try:
            item = self._run(msg, name, call)
        except BaseException as exc:  # the durable store failed around the call
            item = Pending(msg, name, ex.error_results(exc, name, msg.num_returns,
                                                       user_error=False), [], request)
            item.events = call.take_events()
        finally:
            ex.running = b""
            ex.step_call = None
        if self.writer.idle() and not ex.router.poll(0):
            self.writer.send_now(item)
        else:
            self.writer.submit(item)

    def _run(self, msg, name: str, call: context.Call) -> Pending:
        ex = self.ex
        request = call.request
        if request in self.recent:
            cached = context.rpc(protocol.ReplyGet(
                transport.next_req_id(), self.scope, request), "a cached reply")
            if cached is not None:
                return Pending(msg, name, self._unpack_reply(msg, cached), [], request)
        if msg.request_key:  # the caller may send this id again: remember it is answered
            self._remember(request)
        logged = self._logged(msg)
        if logged:  # written with the call's first durable write, at the latest with its reply
            event = {"kind": "request", "method": msg.method, "request": _label(request)}
            call.pending_events.append([self.session, b"q" + request,
                                        serialization.serialize(event).to_bytes()])
        results, contained = ex.compute(msg, name, lambda: ex._method(msg.method))
        item = Pending(msg, name, results, contained, request)
        if self.schedule is not None and self.schedule.completed():
            item.needs_state = True
            if not item.contained and msg.num_returns != "streaming":
                item.cached = self._pack_reply(item.results)
            # Snapshot now unless the writer is busy and more calls wait: then a later
            # snapshot (at the latest when no call waits) covers this call too.
            if self.writer.idle() or not ex.router.poll(0):
                self._snapshot(item, msg)
        item.events = call.take_events()
        if logged:
            event = {"kind": "result", "method": msg.method, "request": _label(request),
                     "ok": item.results[0][0] != VALUE_ERROR if item.results else True}
            item.events.append([self.session, b"r" + request,
                                serialization.serialize(event).to_bytes()])
        return item

    def _remember(self, request: bytes) -> None:
        self.recent[request] = None
        if len(self.recent) > RECENT_IN_MEMORY:
            for old in list(self.recent)[:RECENT_IN_MEMORY // 2]:
                del self.recent[old]

    def chunk(self, index: int, item):
        return journal.chunk(index, item)

    # -- checkpoints ------------------------------------------------------------------
    def _snapshot(self, item: Pending, msg) -> None:
        """Take the state now (the next call will change it); a failure turns the reply
        into the CheckpointError."""
        try:
            item.state = ckpt.snapshot(self.ex.instance)
        except CheckpointError as exc:
            item.results = self.ex.error_results(exc, item.name, msg.num_returns,
                                                 user_error=False)
            item.contained, item.needs_state, item.cached = [], False, None
            return
        self.schedule.taken()

    def _pack_reply(self, results: list) -> list | None:
        """The reply as self-contained blobs: stored values are copied out of the node's
        object store, which does not survive the node."""
        out = []
        for kind, data, size in results:
            if kind == VALUE_STORED:
                blob = self.ex.cw.store.get(data)
                if blob is None:
                    return None
                out.append([kind, bytes(blob), size])
            else:
                out.append([kind, data, size])
        return out

    def _unpack_reply(self, msg, cached: list) -> list:
        from actorium.core.ids import object_id_for
        results = []
        for i, (kind, data, size) in enumerate(cached):
            if kind == VALUE_STORED:
                oid = object_id_for(msg.task_id, i)
                self.ex.cw.store_put(oid, [data])
                results.append([VALUE_STORED, oid, size])
            else:
                results.append([kind, data, size])
        return results


class DurableRuntime:
    """Durable actors as an actor runtime of the core (``core/runtimes.py``): it claims
    the actors created with ``checkpoint=`` or for a session, and hosts them as a
    DurableActor in their worker."""
    name = "durable"

    def check_options(self, options) -> None:
        if options.checkpoint is None:
            return
        ckpt.policy(options.checkpoint)
        if options.isolation == "sandbox":
            raise ValueError("checkpoint= is not supported for sandboxed actors")

    def configure(self, actor_class, actor_id: bytes, session: str) -> dict:
        o = actor_class._options
        if o.checkpoint is None and not session:
            return {}
        if actor_class._is_async or (o.max_concurrency or 1) > 1:
            raise ValueError(f"{actor_class._name}: checkpoints and sessions need a "
                             f"synchronous actor that runs one call at a time (no async "
                             f"methods, max_concurrency=1)")
        scope = (b"session:" + session.encode()) if session else b"actor:" + actor_id
        return {"scope": scope, "checkpoint": ckpt.policy(o.checkpoint), "session": session}

    def host(self, executor, config: dict) -> DurableActor:
        return DurableActor(executor, config)


runtimes.register_actor_runtime(DurableRuntime())
