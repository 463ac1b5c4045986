"""The executing side of a durable actor (``checkpoint=`` or a session): runs each call
under a journal Call, checkpoints state before replying, answers re-delivered calls
that already completed from their cached reply, and logs a session's requests.

Order for one call (the actor runs one call at a time):
1. a call that completed and was checkpointed before a crash (its id is in ``recent``)
   gets its cached reply, without running again;
2. a session logs a "request" event (deduplicated by the call's id);
3. the method runs; its steps are journaled under (scope, call id, step position);
4. if a checkpoint is due, state and reply are written in one fsync'd transaction;
5. a session logs a "result" event, then the reply goes to the caller.
A crash before 4 re-runs the call from the previous checkpoint with its journal; a
crash after 4 answers it from 1. Either way the caller sees one result.
"""
from __future__ import annotations

from actorium.core import protocol, transport
from actorium.core.ids import object_id_for
from actorium.core.serialization import VALUE_ERROR, VALUE_STORED
from actorium.durable import checkpoint as ckpt
from actorium.durable import context, eventlog, journal
from actorium.exceptions import CheckpointError

# Test hook: called after a checkpoint committed and before the reply is sent, so a test
# can kill the process in exactly that window (tests/durable/test_checkpoints.py).
after_checkpoint = None


class DurableActor:
    def __init__(self, executor, config: dict):
        self.ex = executor
        self.scope: bytes = config["scope"]
        self.session: str = config.get("session") or ""
        pol = config.get("checkpoint")
        self.schedule = ckpt.Schedule(pol) if pol else None
        self.recent: set[bytes] = set()

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
        self.recent = set(record["recent"])
        ckpt.restore(self.ex.instance, record["state"])

    # -- one call -------------------------------------------------------------------
    def call(self, msg) -> None:
        ex = self.ex
        ex.running = msg.task_id
        ex.step_call = context.Call(self.scope, msg.task_id, self.session)
        name = f"{ex.actor_name}.{msg.method}"
        contained: list = []
        try:
            if msg.task_id in self.recent:
                cached = context.rpc(protocol.ReplyGet(
                    transport.next_req_id(), self.scope, msg.task_id), "a cached reply")
                if cached is not None:
                    ex.reply(msg.owner, msg.task_id, self._unpack_reply(msg, cached), [])
                    return
            logged = self._logged(msg)
            if logged:
                eventlog.append_runtime_event(self.session, {
                    "kind": "request", "method": msg.method, "request": msg.task_id.hex()},
                    b"q" + msg.task_id)
            results, contained = ex.compute(msg, name, lambda: ex._method(msg.method))
            if self.schedule is not None and self.schedule.completed():
                results, contained = self._checkpoint(msg, name, results, contained)
            if logged:
                eventlog.append_runtime_event(self.session, {
                    "kind": "result", "method": msg.method, "request": msg.task_id.hex(),
                    "ok": results[0][0] != VALUE_ERROR if results else True},
                    b"r" + msg.task_id)
        except BaseException as exc:  # the durable store failed around the call
            results, contained = ex.error_results(exc, name, msg.num_returns,
                                                  user_error=False), []
        finally:
            ex.running = b""
            ex.step_call = None
        ex.reply(msg.owner, msg.task_id, results, contained)

    def chunk(self, index: int, item):
        return journal.chunk(index, item)

    # -- checkpoints ------------------------------------------------------------------
    def _checkpoint(self, msg, name, results, contained):
        """Write state + reply atomically; a failure turns the reply into the error."""
        try:
            state = ckpt.snapshot(self.ex.instance)
            reply = None if contained or msg.num_returns == "streaming" \
                else self._pack_reply(results)
            context.rpc(protocol.CheckpointPut(transport.next_req_id(), self.scope, state,
                                               msg.task_id, reply), "a checkpoint")
        except Exception as exc:
            err = exc if isinstance(exc, CheckpointError) else CheckpointError(str(exc))
            return self.ex.error_results(err, name, msg.num_returns, user_error=False), []
        self.schedule.taken()
        if after_checkpoint is not None:
            after_checkpoint()
        return results, contained

    def _pack_reply(self, results: list) -> list:
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
        results = []
        for i, (kind, data, size) in enumerate(cached):
            if kind == VALUE_STORED:
                oid = object_id_for(msg.task_id, i)
                self.ex.cw.store_put(oid, [data])
                results.append([VALUE_STORED, oid, size])
            else:
                results.append([kind, data, size])
        return results

