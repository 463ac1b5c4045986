"""Every message that crosses a process boundary, declared once.

A message is a slotted dataclass with a class-level ``op`` name. On the wire it is a
msgpack array ``[op, field1, field2, ...]`` in declaration order; sender and receiver
share this module, so the wire format is written down exactly once. Only plain
msgpack types travel here (never pickle): user values ride inside ``bytes`` fields
as serialized blobs that only authenticated cluster peers ever unpickle.

Invariant: field order is the wire order; adding a field means appending it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

# 2: ActorInit.durable and the durable store messages; 3: JournalBegin.attempt, Replica*;
# 4: CancelTask.recursive
PROTOCOL_VERSION = 4

_BY_OP: dict[str, type] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}

_packb = msgpack.Packer(use_bin_type=True).pack


def _message(cls):
    """Register a message class under its ``op`` and freeze its field order."""
    cls = dataclass(slots=True)(cls)
    if cls.op in _BY_OP:
        raise RuntimeError(f"duplicate message op {cls.op!r}")
    _BY_OP[cls.op] = cls
    _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return cls


def encode(msg) -> bytes:
    names = _FIELDS[type(msg)]
    return _packb([msg.op, *[getattr(msg, n) for n in names]])


class ProtocolError(Exception):
    """A peer sent bytes that are not a known, well-formed message."""


def decode(data) -> Any:
    try:
        items = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
        cls = _BY_OP[items[0]]
        return cls(*items[1:])
    except Exception as exc:  # any malformed input is the peer's fault, never ours
        raise ProtocolError(f"undecodable message ({len(data)} bytes): {exc}") from None


# ---------------------------------------------------------------------------
# Generic request/reply. Requests that expect an answer carry ``req_id``;
# the answer is a Reply with the same id.
# ---------------------------------------------------------------------------
@_message
class Reply:
    op: ClassVar[str] = "reply"
    req_id: int
    ok: bool
    value: Any  # msgpack-able result, or an error string when not ok


# ---------------------------------------------------------------------------
# Owner <-> executing worker (the per-task path; the raylet is not on it).
# Values: ``args`` is a serialized (args, kwargs) blob with top-level refs replaced by
# slots; ``refs`` lists [slot, kind, data] resolved values (see serialization.VALUE_*).
# ---------------------------------------------------------------------------
@_message
class PushTask:
    op: ClassVar[str] = "push_task"
    task_id: bytes
    fn_id: bytes
    name: str
    args: bytes
    refs: list
    num_returns: Any  # int, or "streaming"
    owner: str  # owner endpoint address to reply to
    job: str
    retry_exceptions: Any  # bool: whether the owner may retry on exceptions
    namespace: str


@_message
class ActorCall:
    op: ClassVar[str] = "actor_call"
    task_id: bytes
    method: str
    args: bytes
    refs: list
    num_returns: Any
    owner: str
    caller: bytes
    seq: int
    job: str
    namespace: str
    request_key: bytes  # durable actors: the caller's own id of this request (b"": task id)


@_message
class ActorInit:
    """Sent by the raylet to a freshly started actor worker: build the instance."""
    op: ClassVar[str] = "actor_init"
    actor_id: bytes
    class_id: bytes
    name: str
    args: bytes
    refs: list
    max_concurrency: int
    is_async: bool
    gcs: str
    job: str
    restarts: int
    namespace: str
    durable: dict  # {} or {"key": str, "checkpoint": {...} | None, "session": str}


@_message
class TaskReply:
    """Results of a task or actor call. ``results`` is a list of [kind, data, size]."""
    op: ClassVar[str] = "task_reply"
    task_id: bytes
    results: list
    worker_id: bytes
    contained: list  # [object_id, owner] of refs nested in the results


@_message
class StreamItem:
    op: ClassVar[str] = "stream_item"
    task_id: bytes
    index: int
    result: list  # [kind, data, size]


@_message
class CancelTask:
    """owner -> the worker running a task: cancel it, and with ``recursive`` every task
    and actor call it submitted that has not finished."""
    op: ClassVar[str] = "cancel_task"
    task_id: bytes
    force: bool
    recursive: bool


# ---------------------------------------------------------------------------
# Objects between owners and borrowers.
# ---------------------------------------------------------------------------
@_message
class GetObject:
    """Ask an owner for an object's value; answered with ObjectValue when it is ready."""
    op: ClassVar[str] = "get_object"
    object_id: bytes
    reply_to: str


@_message
class ObjectValue:
    op: ClassVar[str] = "object_value"
    object_id: bytes
    result: list  # [kind, data, size]


@_message
class AddBorrower:
    op: ClassVar[str] = "add_borrower"
    object_id: bytes
    borrower: str


@_message
class RemoveBorrower:
    op: ClassVar[str] = "remove_borrower"
    object_id: bytes
    borrower: str


# ---------------------------------------------------------------------------
# Core worker <-> raylet.
# ---------------------------------------------------------------------------
@_message
class RegisterClient:
    """A driver or worker announces itself to its node's raylet."""
    op: ClassVar[str] = "register_client"
    req_id: int
    worker_id: bytes
    pid: int
    kind: str  # "driver" | "worker"
    task_addr: str
    owner_addr: str
    job: str


@_message
class RequestLease:
    """Ask a raylet for a worker. ``strategy`` is None, "SPREAD" or
    ["NODE_AFFINITY", node_id, soft]. A request that a raylet forwarded elsewhere
    (``spilled``) is queued where it lands, never forwarded again; its answers go to
    ``owner`` (the requester's owner endpoint) rather than back on the socket it came in."""
    op: ClassVar[str] = "request_lease"
    req_id: int
    shape: dict
    owner: str
    strategy: Any = None
    spilled: bool = False
    node_id: str = ""  # the requester's node, so its leases die with it


@_message
class LeaseGranted:
    op: ClassVar[str] = "lease_granted"
    req_id: int
    lease_id: int
    worker_id: bytes
    task_addr: str
    owner_addr: str


@_message
class LeaseBusy:
    """The request is feasible but the node is full right now; it stays queued. Owners
    then pipeline deeper on the leases they hold instead of waiting for more."""
    op: ClassVar[str] = "lease_busy"
    req_id: int


@_message
class LeaseSpillback:
    """The local raylet cannot (or should not) grant this request: ask ``raylet_addr``."""
    op: ClassVar[str] = "lease_spillback"
    req_id: int
    raylet_addr: str
    node_id: str


@_message
class LeaseRejected:
    """The request can never be granted as asked (hard node affinity to a dead node)."""
    op: ClassVar[str] = "lease_rejected"
    req_id: int
    reason: str


@_message
class ReturnLease:
    op: ClassVar[str] = "return_lease"
    lease_id: int
    kill_worker: bool


@_message
class ReclaimLease:
    """The raylet has waiting lease requests: return this lease as soon as it is idle."""
    op: ClassVar[str] = "reclaim_lease"
    lease_id: int


@_message
class LeaseWorkerDied:
    op: ClassVar[str] = "lease_worker_died"
    lease_id: int
    reason: str


@_message
class LeaseInfeasible:
    """Sent once per request whose shape no node can ever satisfy; the request stays queued."""
    op: ClassVar[str] = "lease_infeasible"
    req_id: int
    shape: dict
    total: dict


@_message
class WorkerBlocked:
    op: ClassVar[str] = "worker_blocked"
    worker_id: bytes


@_message
class WorkerUnblocked:
    op: ClassVar[str] = "worker_unblocked"
    worker_id: bytes


@_message
class FreeObjects:
    op: ClassVar[str] = "free_objects"
    object_ids: list


@_message
class LogBatch:
    op: ClassVar[str] = "log_batch"
    pid: int
    name: str
    stream: str  # "stdout" | "stderr"
    lines: list
    job: str
    relayed: bool = False  # forwarded by another node's raylet (never forwarded again)


@_message
class PullObject:
    """Core worker -> its raylet: bring ``object_id`` from the node at ``source`` (a
    raylet address) into this node's store. Replied when the local copy exists."""
    op: ClassVar[str] = "pull_object"
    req_id: int
    object_id: bytes
    source: str


@_message
class FetchChunk:
    """Raylet -> raylet: send bytes [offset, offset+length) of an object to ``reply_to``
    (the asking raylet), as ObjectChunk. length 0 asks only for the size."""
    op: ClassVar[str] = "fetch_chunk"
    object_id: bytes
    offset: int
    length: int
    reply_to: str


@_message
class ObjectChunk:
    """One chunk of an object's payload; the bytes travel as a second ZeroMQ frame.
    ``total`` is -1 when the source does not have the object."""
    op: ClassVar[str] = "object_chunk"
    object_id: bytes
    offset: int
    total: int


@_message
class StartActor:
    """gcs -> raylet: start a dedicated worker for an actor and send it ActorInit."""
    op: ClassVar[str] = "start_actor"
    actor_id: bytes
    shape: dict
    init: bytes  # encoded ActorInit


@_message
class KillWorker:
    op: ClassVar[str] = "kill_worker"
    actor_id: bytes


@_message
class NodeStats:
    op: ClassVar[str] = "node_stats"
    req_id: int


@_message
class ListObjects:
    """The objects in a node's store (``actorium list objects``); the Reply's value is a
    list of plain maps (``ObjectStore.list``), at most ``limit`` of them."""
    op: ClassVar[str] = "list_objects"
    req_id: int
    limit: int


@_message
class ShutdownNode:
    op: ClassVar[str] = "shutdown_node"
    req_id: int


# ---------------------------------------------------------------------------
# Anyone <-> gcs.
# ---------------------------------------------------------------------------
@_message
class RegisterNode:
    op: ClassVar[str] = "register_node"
    req_id: int
    node_id: str
    raylet_addr: str
    resources: dict
    store_root: str
    pid: int
    version: int
    head: bool = False
    host: str = ""
    data_addr: str = ""  # host:port of the raylet's object data port ("" : none)


@_message
class NodeHeartbeat:
    op: ClassVar[str] = "node_heartbeat"
    node_id: str
    available: dict


@_message
class ClusterView:
    """gcs -> raylet, in answer to each heartbeat: the live nodes as
    [node_id, raylet_addr, total, available, data_addr], for spillback decisions and
    for finding a raylet's object data port."""
    op: ClassVar[str] = "cluster_view"
    nodes: list


@_message
class SubscribeNodes:
    """Ask the gcs to push NodeUpdate for every node that dies (or joins)."""
    op: ClassVar[str] = "subscribe_nodes"


@_message
class NodeUpdate:
    """gcs -> subscribers: a node joined (alive) or was declared dead. A raylet that
    receives its own death notice stops: the cluster has already failed its work over."""
    op: ClassVar[str] = "node_update"
    node_id: str
    raylet_addr: str
    alive: bool
    reason: str


@_message
class KvPut:
    op: ClassVar[str] = "kv_put"
    req_id: int
    key: bytes
    value: bytes
    overwrite: bool


@_message
class KvGet:
    op: ClassVar[str] = "kv_get"
    req_id: int
    key: bytes


@_message
class RegisterActor:
    """Reserve an actor id (and its name, if any). Answered with the actor's info;
    with get_if_exists an existing actor of that name is returned instead."""
    op: ClassVar[str] = "register_actor"
    req_id: int
    actor_id: bytes
    name: str
    namespace: str
    detached: bool
    get_if_exists: bool
    max_restarts: int
    shape: dict
    owner_job: str
    meta: bytes  # msgpack of class name and method table, for get_actor handles
    strategy: Any = None  # as RequestLease.strategy


@_message
class CreateActor:
    op: ClassVar[str] = "create_actor"
    actor_id: bytes
    init: bytes  # encoded ActorInit


@_message
class ActorReady:
    op: ClassVar[str] = "actor_ready"
    actor_id: bytes
    task_addr: str
    owner_addr: str
    worker_id: bytes
    node_id: str
    pid: int


@_message
class ActorWorkerExited:
    op: ClassVar[str] = "actor_worker_exited"
    actor_id: bytes
    reason: str
    creation_error: bytes  # serialized error blob when __init__ raised, else b""


@_message
class SubscribeActor:
    op: ClassVar[str] = "subscribe_actor"
    actor_id: bytes


@_message
class ActorUpdate:
    op: ClassVar[str] = "actor_update"
    actor_id: bytes
    state: str
    task_addr: str
    owner_addr: str
    reason: str
    error: bytes  # serialized creation error blob, if any
    restarts: int


@_message
class KillActor:
    op: ClassVar[str] = "kill_actor"
    req_id: int
    actor_id: bytes
    no_restart: bool


@_message
class GetNamedActor:
    op: ClassVar[str] = "get_named_actor"
    req_id: int
    name: str
    namespace: str


@_message
class ListState:
    """Read-only views for the API and CLI: what = nodes | actors | resources | objects."""
    op: ClassVar[str] = "list_state"
    req_id: int
    what: str


@_message
class JobFinished:
    op: ClassVar[str] = "job_finished"
    req_id: int
    job: str


@_message
class Ping:
    op: ClassVar[str] = "ping"
    req_id: int


@_message
class Hello:
    """First request of a driver or CLI to the gcs: the gcs refuses a peer whose
    ``version`` is not its ``PROTOCOL_VERSION`` (nodes send it in RegisterNode).
    Invariant: this message's op and field order never change between versions."""
    op: ClassVar[str] = "hello"
    req_id: int
    version: int
    kind: str  # "driver", "cli", ...


def version_mismatch(peer_version) -> str:
    """The refusal text for a peer speaking another protocol version."""
    return (f"protocol version mismatch: the peer speaks actorium protocol version "
            f"{peer_version!r} but this cluster speaks version {PROTOCOL_VERSION}; run the "
            f"same actorium version on every node, driver and CLI")


# ---------------------------------------------------------------------------
# Sandboxes: client -> its raylet, relayed to the node's sandbox zygote
# (actorium.raylet.sandbox_relay, actorium.isolation.service). Each is answered with a
# Reply whose value is a plain map. ``inputs`` and every result ``value`` are data-only
# codec bytes (actorium.isolation.codec), never pickle. ``call`` and ``payload`` are
# pickles made by the trusted caller; only the jail they are meant for unpickles them.
@_message
class RunSandbox:
    """A one-shot sandbox: the snippet ``code`` (actorium.sandbox.run), or, when ``call``
    is not empty, a pickled (function bytes, args, kwargs) (a sandboxed function)."""
    op: ClassVar[str] = "run_sandbox"
    req_id: int
    code: str
    policy: dict  # plain SandboxPolicy fields (actorium.isolation.channel.policy_to_dict)
    inputs: bytes
    call: bytes
    worker_id: bytes  # the requesting worker (its runs are cancelled if it dies); b"" if a driver


@_message
class CancelSandbox:
    """Kill the one-shot sandbox this peer started with request ``req_id``."""
    op: ClassVar[str] = "cancel_sandbox"
    req_id: int


@_message
class SandboxOpen:
    """Start a resident jail for a sandboxed actor; the Reply's value is
    {"sid", "ok", "error", "violation"} once its constructor returned or raised."""
    op: ClassVar[str] = "sandbox_open"
    req_id: int
    payload: bytes  # pickled (class bytes, args, kwargs)
    policy: dict
    worker_id: bytes  # the actor's worker: the jail is closed when it exits


@_message
class SandboxCall:
    """One method call in resident jail ``sid``; the Reply's value is
    {"value", "error", "violation", "stdout", "stderr"}."""
    op: ClassVar[str] = "sandbox_call"
    req_id: int
    sid: int
    payload: bytes  # pickled (method name, args, kwargs)


@_message
class SandboxClose:
    op: ClassVar[str] = "sandbox_close"
    sid: int


# ---------------------------------------------------------------------------
# Durable store (actorium.durable), held by the gcs in its own fsync'd LMDB environment.
# Records are keyed by ``scope`` (a durable actor's key, ``session:<key>``, or ``task``),
# ``request`` (the task id of the call, stable across re-delivery) and ``seq`` (the step's
# position in that call), so any process of the cluster can read them. Values are
# serialized blobs (core/serialization.py) in bytes fields.
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
