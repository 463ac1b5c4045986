"""Actor calls on the caller's I/O thread: sent straight to the actor's worker, in
submission order per caller, queued while the actor is being created or restarted.

Order: a call waits in ``unsent`` until its ref arguments are resolved *and* every
earlier call of this caller has been handed on, so an actor that runs one call at a
time sees this caller's calls in submission order however the arguments' readiness
interleaves (the worker runs calls in arrival order, and one socket keeps it).

The gcs tells subscribers where an actor lives (ActorUpdate); on a restart, calls in
flight are re-sent when ``max_task_retries`` allows, otherwise they fail with
ActorDiedError, like every call made after the actor is dead for good.

The actor's state as this caller knows it is an ActorState, changed only by
``ActorSubmitter._transition`` through ``TRANSITIONS``: one entry per (from, to) pair
that an update can bring, with what it does to the calls. Updates may repeat (a new
subscription answers with the current state) and may skip states this caller did not
hear; a dead actor never comes back, so anything after DEAD but DEAD raises with the
actor's history. Each call itself moves through the owner's TaskTable (task_state.py).
"""
from __future__ import annotations

import collections
import enum

from actorium.core.objects import stream
from actorium.core.objects.serialization import load_error
from actorium.core.owner.task_state import FINISHED, PUSHED, QUEUED, RESOLVING
from actorium.core.wire import protocol, transport
from actorium.exceptions import ActorDiedError, TaskCancelledError


class ActorState(enum.Enum):
    PENDING = "PENDING_CREATION"  # being created (or re-created after RESTARTING)
    ALIVE = "ALIVE"
    RESTARTING = "RESTARTING"
    DEAD = "DEAD"


PENDING, ALIVE, RESTARTING, DEAD = ActorState
# The gcs's states (gcs/actor_table.py) as a caller sees them.
_FROM_GCS = {"DEPENDENCIES_UNREADY": PENDING, "PENDING_CREATION": PENDING, "ALIVE": ALIVE,
             "RESTARTING": RESTARTING, "DEAD": DEAD}


class InvalidTransition(RuntimeError):
    pass


class ActorEntry:
    """One actor as this caller follows it: its state, address, and the calls on it."""
    __slots__ = ("actor_id", "state", "task_addr", "owner_addr", "unsent", "queue",
                 "inflight", "seq", "subscribed", "death", "max_task_retries", "name",
                 "released", "creation", "history")

    def __init__(self, actor_id: bytes, max_task_retries: int, name: str):
        self.actor_id = actor_id
        self.state = PENDING
        self.history: collections.deque = collections.deque([(PENDING.name, "watched")],
                                                            maxlen=32)
        self.creation = None  # our creation call, kept for its arguments until the actor dies
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
        self.actors: dict[bytes, ActorEntry] = {}
        self.caller_id = worker.worker_id

    def _entry(self, actor_id: bytes, max_task_retries: int = 0, name: str = "") -> ActorEntry:
        st = self.actors.get(actor_id)
        if st is None:
            st = self.actors[actor_id] = ActorEntry(actor_id, max_task_retries, name)
        if not st.subscribed:
            st.subscribed = True
            self.w._send_gcs(protocol.SubscribeActor(actor_id))
        return st

    def is_dead(self, actor_id: bytes) -> bool:
        st = self.actors.get(actor_id)
        return st is not None and st.state is DEAD

    def create(self, spec, send, max_task_retries: int, name: str) -> None:
        """I/O thread: follow a new actor and send its creation (``send(spec)``, to the
        gcs) once the constructor's ref arguments are resolved. The arguments stay held
        until the actor is dead for good: a restart builds it from them again."""
        st = self._entry(spec.actor_id, max_task_retries, name)
        st.creation = spec
        self.w.tasks.transition(spec, RESOLVING, "actor creation submitted")

        def ready(spec):
            self.w.tasks.transition(spec, QUEUED, "arguments ready")
            self.w.tasks.transition(spec, PUSHED, "creation sent to the gcs")
            send(spec)
        self.w.submitter.resolve(spec, ready)

    def submit(self, spec) -> None:
        self.w.tasks.transition(spec, RESOLVING, "submitted")
        st = self._entry(spec.actor_id)
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
        if spec.cancelled:
            return  # cancelled while its arguments were pending: already failed
        self.w.tasks.transition(spec, QUEUED, "arguments ready")
        st = self.actors[spec.actor_id]
        if st.state is DEAD:
            self._fail_dead(st, spec)
        elif st.state is ALIVE and not st.queue:
            self._send(st, spec)
        else:
            st.queue.append(spec)

    def _send(self, st: ActorEntry, spec) -> None:
        st.inflight[spec.task_id] = spec
        self.w.tasks.transition(spec, PUSHED, "sent to the actor")
        transport.send(st.task_addr, protocol.ActorCall(
            spec.task_id, spec.method, spec.args, spec.resolved, spec.num_returns,
            self.w.owner_addr, self.caller_id, spec.seq, spec.job, self.w.namespace,
            spec.request_key))

    def _fail_dead(self, st: ActorEntry, spec) -> None:
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

    def _stop_if_idle(self, st: ActorEntry) -> None:
        if not st.inflight and not st.queue and not st.unsent and st.state is not DEAD:
            self.w._send_gcs(protocol.KillActor(transport.next_req_id(), st.actor_id, True))

    def on_actor_update(self, msg) -> None:
        st = self.actors.get(msg.actor_id)
        if st is not None:
            self._transition(st, _FROM_GCS[msg.state], msg)

    # -- the actor's state machine --------------------------------------------
    def _transition(self, st: ActorEntry, new: ActorState, msg) -> None:
        action = TRANSITIONS.get((st.state, new))
        if action is None:
            raise InvalidTransition(
                f"actor {st.name or st.actor_id.hex()}: {st.state.name} -> {new.name} "
                f"({msg.reason or 'update'}) is not allowed; history: {list(st.history)}")
        st.history.append((new.name, msg.reason or "update"))
        st.state = new
        action(self, st, msg)

    def _alive(self, st: ActorEntry, msg) -> None:
        """Send the queued calls; calls still on an earlier process of it (a restart this
        caller did not hear of) are retried or failed first."""
        previous_addr = st.task_addr
        st.task_addr, st.owner_addr = msg.task_addr, msg.owner_addr
        self._creation_done(st, "the actor is alive")
        if previous_addr and previous_addr != msg.task_addr:
            self._requeue_inflight(st, "the actor restarted")
        while st.queue and st.state is ALIVE:
            self._send(st, st.queue.popleft())

    def _restarting(self, st: ActorEntry, msg) -> None:
        self._requeue_inflight(st, msg.reason or "the actor's process died")

    def _pending(self, st: ActorEntry, msg) -> None:
        """Being (re-)created: calls queue until it is alive."""

    def _dead(self, st: ActorEntry, msg) -> None:
        st.death = msg.reason or "it was killed or crashed"
        if msg.error:
            err = load_error(msg.error)
            st.death = f"{st.death}\n{err.traceback}"
        self._creation_done(st, "the actor died")
        if st.creation is not None:
            st.creation.holds = []
            st.creation = None
        for spec in list(st.inflight.values()):
            self._fail_dead(st, spec)
        st.inflight.clear()
        while st.queue:
            self._fail_dead(st, st.queue.popleft())

    def _creation_done(self, st: ActorEntry, why: str) -> None:
        spec = st.creation
        if spec is not None and spec.state is PUSHED:
            self.w.tasks.transition(spec, FINISHED, why)

    def _requeue_inflight(self, st: ActorEntry, reason: str) -> None:
        """Calls that were on the dead process: retry if allowed, else fail them."""
        retry = []
        for spec in sorted(st.inflight.values(), key=lambda s: s.seq):
            if spec.retries_left != 0 and not spec.cancelled:
                spec.retries_left -= 1
                self.w.tasks.transition(spec, QUEUED, f"retry: {reason}")
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
        if st is None or spec.cancelled or spec.task_id not in self.w.tasks.live:
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


_S = ActorSubmitter
# (from, to) -> what the update does. Repeats are allowed (a new subscription answers with
# the current state), and so are skipped states; nothing leaves DEAD.
TRANSITIONS = {
    (PENDING, PENDING): _S._pending,
    (PENDING, ALIVE): _S._alive,
    (PENDING, RESTARTING): _S._restarting,
    (PENDING, DEAD): _S._dead,
    (ALIVE, ALIVE): _S._alive,
    (ALIVE, RESTARTING): _S._restarting,
    (ALIVE, PENDING): _S._pending,
    (ALIVE, DEAD): _S._dead,
    (RESTARTING, RESTARTING): _S._restarting,
    (RESTARTING, PENDING): _S._pending,
    (RESTARTING, ALIVE): _S._alive,
    (RESTARTING, DEAD): _S._dead,
    (DEAD, DEAD): lambda self, st, msg: None,
}
