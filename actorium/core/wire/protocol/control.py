"""Messages to and from the gcs: nodes, actors, the function table, jobs and versions."""
from __future__ import annotations

from typing import Any, ClassVar

from actorium.core.wire.protocol._codec import PROTOCOL_VERSION, _message

__all__ = ["RegisterNode", "NodeHeartbeat", "ClusterView", "SubscribeNodes", "NodeUpdate",
           "KvPut", "KvGet", "RegisterActor", "CreateActor", "ActorReady",
           "ActorWorkerExited", "SubscribeActor", "ActorUpdate", "KillActor",
           "GetNamedActor", "ListState", "JobFinished", "Ping", "Hello", "version_mismatch",
           "ActorOutgrown", "DrainNode"]


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
    # Demand the node cannot serve now (shapes of queued lease requests and actors,
    # at most 100) and how many workers are leased or host actors: what the node
    # autoscaler scales on (``ListState("demand")``).
    pending: list = None
    busy: int = 0


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
    auto: bool = False  # resources="auto": ``shape`` is only the initial reservation


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


@_message
class ActorOutgrown:
    """raylet -> gcs: a right-sized actor wants more than its node can give (``reason``
    says what), or fits again (``reason`` empty). A durable one is moved to a node
    where ``wanted`` fits."""
    op: ClassVar[str] = "actor_outgrown"
    actor_id: bytes
    node_id: str
    wanted: dict
    reason: str


@_message
class DrainNode:
    """autoscaler -> gcs: stop (``drain``) or resume placing work on a node. The Reply
    says whether the node is idle, i.e. safe to terminate."""
    op: ClassVar[str] = "drain_node"
    req_id: int
    node_id: str
    drain: bool


def version_mismatch(peer_version) -> str:
    """The refusal text for a peer speaking another protocol version."""
    return (f"protocol version mismatch: the peer speaks actorium protocol version "
            f"{peer_version!r} but this cluster speaks version {PROTOCOL_VERSION}; run the "
            f"same actorium version on every node, driver and CLI")
