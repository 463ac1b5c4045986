"""Messages between a core worker (or the gcs) and a raylet, and the sandbox requests a
raylet relays to its node's sandbox zygote."""
from __future__ import annotations

from typing import Any, ClassVar

from actorium.core.wire.protocol._codec import _message

__all__ = ["RegisterClient", "RequestLease", "LeaseGranted", "LeaseBusy", "LeaseSpillback",
           "LeaseRejected", "ReturnLease", "ReclaimLease", "LeaseWorkerDied",
           "LeaseInfeasible", "WorkerBlocked", "WorkerUnblocked", "FreeObjects", "LogBatch",
           "PullObject", "FetchChunk", "ObjectChunk", "StartActor", "KillWorker",
           "NodeStats", "ListObjects", "ShutdownNode", "RunSandbox", "CancelSandbox",
           "SandboxOpen", "SandboxCall", "SandboxClose"]


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
    auto: bool = False  # right-sized: ``shape`` is the initial reservation, then measured


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
