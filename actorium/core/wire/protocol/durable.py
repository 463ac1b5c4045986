"""Messages of the durable store (actorium.durable), held by the gcs."""
from __future__ import annotations

from typing import Any, ClassVar

from actorium.core.wire.protocol._codec import _message

__all__ = ["JournalBegin", "ReplicaApply", "ReplicaState", "ReplicaLoad", "ReplicaFetch",
           "JournalCommit", "CheckpointPut", "CheckpointGet", "ReplyGet", "EventAppend",
           "EventRange"]


# ---------------------------------------------------------------------------
# Durable store (actorium.durable), held by the gcs in its own fsync'd LMDB environment.
# Records are keyed by ``scope`` (a durable actor's key, ``session:<key>``, or ``task``),
# ``request`` (the task id of the call, stable across re-delivery) and ``seq`` (the step's
# position in that call), so any process of the cluster can read them. Values are
# serialized blobs (core/objects/serialization.py) in bytes fields.
# ---------------------------------------------------------------------------
@_message
class JournalBegin:
    """Start step ``seq``: answered with the action to take ("run", "replay",
    "ambiguous", "mismatch"), and for "replay" the committed outcome."""
    op: ClassVar[str] = "journal_begin"
    req_id: int
    scope: bytes
    request: bytes
    seq: int
    name: str
    idempotent: bool
    events: list  # session events to append first, in the same transaction: [[key, dedup, blob]]
    attempt: bytes = b""  # random per begin: a repeat of a lost request is told from a crash


@_message
class ReplicaApply:
    """gcs -> durable standby: apply these committed durable writes (each an encoded
    request message, in commit order) in one fsync'd transaction, then be at ``seq``."""
    op: ClassVar[str] = "replica_apply"
    req_id: int
    seq: int
    writes: list


@_message
class ReplicaState:
    """gcs -> durable standby: answered with the seq of the standby's copy (0: none)."""
    op: ClassVar[str] = "replica_state"
    req_id: int


@_message
class ReplicaLoad:
    """gcs -> durable standby: replace your copy by this compacted LMDB file (a full
    copy of the gcs's store at ``seq``), fsync'd."""
    op: ClassVar[str] = "replica_load"
    req_id: int
    seq: int
    data: bytes


@_message
class ReplicaFetch:
    """restarted gcs -> durable standby: answered with [seq, compacted LMDB file]."""
    op: ClassVar[str] = "replica_fetch"
    req_id: int


@_message
class JournalCommit:
    """Commit step ``seq``'s outcome; ``ok`` False means ``value`` is an error blob.
    ``event_key`` names a session log that gets a "step" event in the same transaction."""
    op: ClassVar[str] = "journal_commit"
    req_id: int
    scope: bytes
    request: bytes
    seq: int
    ok: bool
    value: bytes
    event_key: str


@_message
class CheckpointPut:
    """In one transaction: an actor's state (None: unchanged), the replies of the calls
    whose effects it holds (``replies``: [[request, [[kind, blob, size], ...] or None]]),
    and session events (``events``: [[log key, dedup, blob]])."""
    op: ClassVar[str] = "checkpoint_put"
    req_id: int
    scope: bytes
    state: Any
    replies: list
    events: list


@_message
class CheckpointGet:
    """The latest checkpoint of ``scope``: {"state", "recent"} or None."""
    op: ClassVar[str] = "checkpoint_get"
    req_id: int
    scope: bytes


@_message
class ReplyGet:
    """The cached reply of a call that completed (and was checkpointed) before a crash."""
    op: ClassVar[str] = "reply_get"
    req_id: int
    scope: bytes
    request: bytes


@_message
class EventAppend:
    """Append ``value`` to the event log ``key``; answered with its index. A non-empty
    ``dedup`` makes the append idempotent (a re-run request appends nothing new)."""
    op: ClassVar[str] = "event_append"
    req_id: int
    key: str
    value: bytes
    dedup: bytes


@_message
class EventRange:
    """Events ``start`` <= index < ``end`` (end -1: to the last) of log ``key``."""
    op: ClassVar[str] = "event_range"
    req_id: int
    key: str
    start: int
    end: int
