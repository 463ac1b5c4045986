"""``durable.step``: run a non-deterministic or side-effecting function at most once per
request, with its outcome journaled in the gcs's durable store.

Per step, in order: (1) ``JournalBegin`` writes an intent record (fsync'd) or finds the
step's earlier record; (2) ``fn`` runs only when the store says "run"; (3)
``JournalCommit`` writes the outcome (fsync'd) before ``step`` returns or raises. So
after a crash at any point the re-run request either replays the committed outcome,
re-runs an idempotent step under the same idempotency key, or gets ``AmbiguousStep``.
"""
from __future__ import annotations

import os

from actorium.core.objects import serialization
from actorium.core.wire import protocol, transport
from actorium.durable import context
from actorium.durable.journal_state import Action
from actorium.exceptions import AmbiguousStep, JournalError

_CHUNK = "__chunk__"


def step(name: str, fn, *args, idempotent: bool = False, **kwargs):
    """Run ``fn(*args, **kwargs)`` as journaled step ``name`` of the current request.

    Returns fn's result, or raises its exception; on a re-run of the request after a
    crash, returns/raises the journaled outcome without calling fn. Must be called inside
    an actor method or remote task, in the same order on every run (steps are matched by
    position; a different name at a position raises JournalError)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"durable.step(): name must be a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"durable.step({name!r}): fn must be callable, got "
                        f"{type(fn).__name__}")
    call = context.current_call("durable.step()")
    if call.in_step:
        raise RuntimeError(f"durable.step({name!r}) was called inside the function of "
                           f"another step; steps cannot be nested")
    seq = call.seq
    call.seq += 1
    key = call.idempotency_key(seq)
    events = call.take_events()
    try:
        begun = context.rpc(protocol.JournalBegin(
            transport.next_req_id(), call.scope, call.request, seq, name, bool(idempotent),
            events, os.urandom(8)), f"the intent of step {name!r}; the step did not run")
    except BaseException:
        call.pending_events[:0] = events  # not written: they ride with the next write
        raise
    action = begun["action"]
    if action == Action.REPLAY.value:
        return _outcome(begun["ok"], begun["value"])
    if action == Action.AMBIGUOUS.value:
        raise AmbiguousStep(
            f"step {name!r} (#{seq} of this request) began before a crash but its outcome "
            f"was not recorded, and it is not marked idempotent: its effect may or may not "
            f"have happened. Check the outside world with idempotency key {key!r}.",
            name, seq, key, begun["attempts"])
    if action == Action.MISMATCH.value:
        raise JournalError(
            f"step #{seq} of this request was journaled as {begun['name']!r} but the re-run "
            f"request called {name!r} there: the code between steps must be deterministic "
            f"(put model calls and other random choices inside steps)")
    return _run(call, name, seq, key, fn, args, kwargs)


def _run(call, name, seq, key, fn, args, kwargs):
    call.in_step, call.step_key = True, key
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        _commit(call, name, seq, False, serialization.error_blob(exc, name, user_error=False))
        raise
    finally:
        call.in_step, call.step_key = False, ""
    blob, problem = _encode(name, value)
    if problem is not None:
        _commit(call, name, seq, False, serialization.error_blob(problem, name,
                                                                 user_error=False))
        raise problem
    _commit(call, name, seq, True, blob)
    return value


def _encode(name: str, value):
    """The journal blob of a result, or the error that makes it unjournalable."""
    try:
        ser = serialization.serialize(value)
    except serialization.SerializationError as exc:
        return None, serialization.SerializationError(
            f"durable.step({name!r}) ran, but its result cannot be journaled: {exc}. "
            f"The step is recorded as failed with this error, so a re-run raises it again "
            f"instead of repeating the step.")
    if ser.contained:
        return None, TypeError(
            f"durable.step({name!r}) ran, but its result contains ObjectRefs, which do not "
            f"survive a crash; return the values instead (actorium.get inside the step). "
            f"The step is recorded as failed with this error.")
    return ser.to_bytes(), None


def _commit(call, name, seq, ok, blob) -> None:
    # Stream chunks are journaled like steps but are not events of the session's log.
    event_key = "" if name.startswith(_CHUNK) else call.event_key
    context.rpc(protocol.JournalCommit(
        transport.next_req_id(), call.scope, call.request, seq, ok, blob, event_key),
        f"the outcome of step {name!r}, which has run (a re-run of this request will "
        f"find it ambiguous unless it is idempotent)")


def _outcome(ok: bool, blob: bytes):
    if ok:
        return serialization.deserialize(blob)
    raise serialization.load_error(blob).to_exception()


def idempotency_key() -> str:
    """The idempotency key of the step whose function is running now: the same on every
    re-run of that step, different for every other step. Pass it to outside services so
    they can drop a repeated request."""
    call = context.current_call("durable.idempotency_key()")
    if not call.in_step:
        raise RuntimeError("durable.idempotency_key() must be called inside the function "
                           "of a durable.step")
    return call.step_key


def chunk(index: int, item):
    """Journal item ``index`` of a durable streaming call, so a re-run stream re-sends
    exactly the items already produced (the caller drops the repeats by index)."""
    return step(f"{_CHUNK}{index}", _identity, item, idempotent=True)


def _identity(item):
    return item


__all__ = ["step", "idempotency_key", "AmbiguousStep", "JournalError"]
