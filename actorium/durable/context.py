"""Which request a durable step belongs to, and the store client the steps talk through.

A ``Call`` names one execution of one request: ``scope`` (the durable actor's key —
``session:<key>`` for sessions, ``actor:<id>`` otherwise — or ``task`` for remote
tasks) and ``request`` (the call's task id, which the caller keeps when it re-delivers
the call after a crash; or the id the caller gave with ``.options(request_id=...)``,
which outlives the caller too). Steps are numbered in the order the request runs them, so a
re-run request meets its journaled steps at the same positions.

The executor of a worker sets ``executor.step_call`` for durable actors; for remote
tasks and plain actors it is made here on first use from the task the main thread is
running. Async and threaded actors have no such single running request, so steps are
refused there with a clear error.
"""
from __future__ import annotations

import os
import time

from actorium.core.wire import transport
from actorium.exceptions import JournalError

RPC_TIMEOUT = 30.0
# A request lost with a crashed gcs is sent again after this long without an answer,
# until RPC_TIMEOUT: the restarted gcs (same address, same store on disk) answers it.
ATTEMPT_TIMEOUT = float(os.environ.get("ACTORIUM_DURABLE_ATTEMPT_TIMEOUT", "1.0"))


class Call:
    __slots__ = ("scope", "request", "task_id", "seq", "emits", "event_key", "step_key",
                 "in_step", "pending_events")

    def __init__(self, scope: bytes, request: bytes, event_key: str = "",
                 task_id: bytes = b""):
        self.scope = scope
        self.request = request  # the task id, or the caller's request_id for this call
        self.task_id = task_id or request
        self.seq = 0
        self.emits = 0
        self.event_key = event_key  # the session's log: steps are logged there too
        self.step_key = ""          # idempotency key of the step whose fn is running
        self.in_step = False
        # Session events not yet written: they ride along with the request's next durable
        # write (a step's intent, an emit, or the checkpoint), which saves an fsync.
        self.pending_events: list = []

    def take_events(self) -> list:
        events, self.pending_events = self.pending_events, []
        return events

    def idempotency_key(self, seq: int) -> str:
        """Stable across re-deliveries: the request id is, and so is the position."""
        return f"{self.request.hex()}.{seq}"


def _executor():
    from actorium.core.objects.object_ref import _worker
    return getattr(_worker, "executor", None) if _worker is not None else None


def current_call(what: str) -> Call:
    """The Call of the request running in this process; a clear error outside one."""
    ex = _executor()
    if ex is None:
        raise RuntimeError(f"{what} must be called inside an actor method or a remote task "
                           f"(it was called in the driver, where there is no request to "
                           f"journal it under)")
    call = ex.step_call
    if call is not None and call.task_id == ex.running:
        return call
    if not ex.running:
        raise RuntimeError(f"{what} must be called inside an actor method or a remote task "
                           f"running in this process; async and threaded actors are not "
                           f"supported")
    scope = b"actor:" + ex.actor_id if ex.actor_id else b"task"
    call = ex.step_call = Call(scope, ex.running)
    return call


def rpc(msg, what: str, retry: bool = True):
    """A request to the gcs's durable store; store and transport failures become
    JournalError naming ``what`` was being written or read.

    With ``retry`` the request is sent again every ATTEMPT_TIMEOUT seconds without an
    answer (a gcs killed before answering, and restarted, answers the copy), for at most
    RPC_TIMEOUT. Every durable request is safe to apply twice except an event append
    without a dedup key, which the caller sends with ``retry=False``: journal commits and
    checkpoints keep the first outcome or overwrite with the same one, deduplicated events
    are appended once, and a JournalBegin carries its attempt token so the store tells
    its own repeat from an earlier attempt's intent."""
    from actorium.core.objects.object_ref import _worker
    if _worker is None:
        raise RuntimeError("actorium is not initialized: call actorium.init() first")
    deadline = time.monotonic() + RPC_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        try:
            return _worker.rpc_gcs(msg, timeout=min(ATTEMPT_TIMEOUT, left) if retry else left)
        except transport.RpcError as exc:
            raise JournalError(f"the durable store failed on {what}: {exc}") from None
        except TimeoutError as exc:
            if not retry or time.monotonic() >= deadline - 0.01:
                raise JournalError(f"the durable store failed on {what}: no answer from "
                                   f"the gcs within {RPC_TIMEOUT:g}s ({exc})") from None
