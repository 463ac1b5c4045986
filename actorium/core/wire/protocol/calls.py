"""Messages between owners, executing workers and borrowers: the per-call path (the
raylet is not on it) and objects."""
from __future__ import annotations

from typing import Any, ClassVar

from actorium.core.wire.protocol._codec import _message

__all__ = ["Reply", "PushTask", "ActorCall", "ActorInit", "TaskReply", "StreamItem",
           "CancelTask", "GetObject", "ObjectValue", "AddBorrower", "RemoveBorrower"]


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
    runtime: dict  # {} (plain), or {"name": a registered ActorRuntime, **its config}


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
