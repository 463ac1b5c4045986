"""Actor calls on the caller's I/O thread: sent straight to the actor's worker, in
submission order per caller, queued while the actor is being created or restarted.

Order: a call waits in ``unsent`` until its ref arguments are resolved *and* every
earlier call of this caller has been handed on, so an actor that runs one call at a
time sees this caller's calls in submission order however the arguments' readiness
interleaves (the worker runs calls in arrival order, and one socket keeps it).

The gcs tells subscribers where an actor lives (ActorUpdate); on a restart, calls in
flight are re-sent when ``max_task_retries`` allows, otherwise they fail with
ActorDiedError, like every call made after the actor is dead for good.
"""
from __future__ import annotations

import collections

from actorium.core import protocol, stream, transport
from actorium.core.serialization import load_error
from actorium.exceptions import ActorDiedError, TaskCancelledError

# Actor states as the gcs publishes them.
PENDING, ALIVE, RESTARTING, DEAD = "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"


class ActorState:
    __slots__ = ("actor_id", "state", "task_addr", "owner_addr", "unsent", "queue",
                 "inflight", "seq", "subscribed", "death", "max_task_retries", "name",
                 "released")

    def __init__(self, actor_id: bytes, max_task_retries: int, name: str):
        self.actor_id = actor_id
        self.state = PENDING
        self.task_addr = ""
        self.owner_addr = ""
        self.unsent: collections.deque = collections.deque()  # ordered calls, seq order
        self.queue: collections.deque = collections.deque()   # ready, actor not alive
        self.inflight: dict = {}
        self.seq = 0
        self.subscribed = False
        self.death = ""
        self.max_task_retries = max_task_retries
        self.name = name
        self.released = False


class ActorSubmitter:
    def __init__(self, worker):
        self.w = worker
        self.actors: dict[bytes, ActorState] = {}
        self.caller_id = worker.worker_id

    def _state(self, actor_id: bytes, max_task_retries: int = 0, name: str = "") -> ActorState:
        st = self.actors.get(actor_id)
        if st is None:
            st = self.actors[actor_id] = ActorState(actor_id, max_task_retries, name)
        if not st.subscribed:
            st.subscribed = True
            self.w._send_gcs(protocol.SubscribeActor(actor_id))
        return st

    def watch(self, actor_id: bytes, max_task_retries: int, name: str) -> None:
        """I/O thread: start following an actor (called when a handle is created)."""
        self._state(actor_id, max_task_retries, name)

    def submit(self, spec) -> None:
        self.w.submitter.live[spec.task_id] = spec
        st = self._state(spec.actor_id)
        st.seq += 1
        spec.seq = st.seq
        if not spec.ordered:
            self.w.submitter.resolve(spec, self._ready)
            return
        st.unsent.append(spec)
        self.w.submitter.resolve(spec, self._resolved, self._resolved)

    def _resolved(self, spec) -> None:
        """An ordered call's arguments are in (or one failed): hand on every call at the
        head of ``unsent`` that is resolved, stopping at the first still waiting."""
        st = self.actors[spec.actor_id]
        unsent = st.unsent
        while unsent:
            head = unsent[0]
            if head.pending_deps and not head.failed and not head.cancelled:
                return
            unsent.popleft()
            if not head.failed and not head.cancelled:
                self._ready(head)

    def _ready(self, spec) -> None:
        st = self.actors[spec.actor_id]
        if spec.cancelled:
            return  # cancelled while its arguments were pending: already failed
        if st.state == DEAD:
            self._fail_dead(st, spec)
        elif st.state == ALIVE and not st.queue:
            self._send(st, spec)
        else:
            st.queue.append(spec)

    def _send(self, st: ActorState, spec) -> None:
        st.inflight[spec.task_id] = spec
        self.w.submitter.inflight[spec.task_id] = spec
        transport.send(st.task_addr, protocol.ActorCall(
            spec.task_id, spec.method, spec.args, spec.resolved, spec.num_returns,
            self.w.owner_addr, self.caller_id, spec.seq, spec.job, self.w.namespace,
            spec.request_key))

    def _fail_dead(self, st: ActorState, spec) -> None:
        self.w.fail(spec, ActorDiedError(
            f"The actor {st.name or st.actor_id.hex()} is dead: {st.death}",
            st.actor_id.hex()))

    def on_reply(self, spec, msg) -> None:
        st = self.actors.get(spec.actor_id)
        if st is not None:
            st.inflight.pop(spec.task_id, None)
        if spec.stream is not None:
            self.w.complete(spec, *stream.end(spec, msg.results, msg.contained))
        else:
            self.w.complete(spec, msg.results, msg.contained)
        if st is not None and st.released:
            self._stop_if_idle(st)

    def release(self, actor_id: bytes) -> None:
        """The last original handle is gone: stop the actor once its calls are done."""
        st = self.actors.get(actor_id)
        if st is None:
            return
        st.released = True
        self._stop_if_idle(st)

    def _stop_if_idle(self, st: ActorState) -> None:
        if not st.inflight and not st.queue and not st.unsent and st.state != DEAD:
            self.w._send_gcs(protocol.KillActor(transport.next_req_id(), st.actor_id, True))

    def on_actor_update(self, msg) -> None:
        st = self.actors.get(msg.actor_id)
        if st is None:
            return
        previous_addr = st.task_addr
        st.state = msg.state
        if msg.state == ALIVE:
            st.task_addr, st.owner_addr = msg.task_addr, msg.owner_addr
            if previous_addr and previous_addr != msg.task_addr:
                self._requeue_inflight(st, "the actor restarted")
            while st.queue and st.state == ALIVE:
                self._send(st, st.queue.popleft())
        elif msg.state == RESTARTING:
            self._requeue_inflight(st, msg.reason or "the actor's process died")
        elif msg.state == DEAD:
            st.death = msg.reason or "it was killed or crashed"
            if msg.error:
                err = load_error(msg.error)
                st.death = f"{st.death}\n{err.traceback}"
            for spec in list(st.inflight.values()):
                self.w.submitter.inflight.pop(spec.task_id, None)
                self._fail_dead(st, spec)
            st.inflight.clear()
            while st.queue:
                self._fail_dead(st, st.queue.popleft())

    def _requeue_inflight(self, st: ActorState, reason: str) -> None:
        """Calls that were on the dead process: retry if allowed, else fail them."""
        retry = []
        for spec in sorted(st.inflight.values(), key=lambda s: s.seq):
            self.w.submitter.inflight.pop(spec.task_id, None)
            if spec.retries_left != 0 and not spec.cancelled:
                spec.retries_left -= 1
                retry.append(spec)
            else:
                self.w.fail(spec, ActorDiedError(
                    f"The actor {st.name or st.actor_id.hex()} died while running "
                    f"{spec.method} ({reason}); the call was not retried "
                    f"(max_task_retries).", st.actor_id.hex()))
        st.inflight.clear()
        st.queue.extendleft(reversed(retry))

    def cancel(self, spec) -> None:
        """Cancel an actor call: one not yet sent fails now and is never sent; one sent
        is cancelled by the actor's worker (see Executor._cancel for what that means)."""
        st = self.actors.get(spec.actor_id)
        if st is None or spec.cancelled or spec.task_id not in self.w.submitter.live:
            return
        spec.cancelled = True
        spec.retries_left = 0
        if spec.task_id in st.inflight:
            if st.owner_addr:
                transport.send(st.owner_addr, protocol.CancelTask(spec.task_id, False, True))
            return
        if spec in st.queue:
            st.queue.remove(spec)
        self.w.fail(spec, TaskCancelledError(f"actor task {spec.method} was cancelled"))
        if spec.ordered:
            self._resolved(spec)  # it no longer holds back the calls behind it
