"""Everything ``actorium.serve`` takes from the layers below it, in one place.

serve sits above core and durable: it uses the same public calls a user would
(``remote``, ``get``, ``kill``, ``get_actor``, ``session``), taken from their defining
modules — never from the top-level ``actorium`` package, which imports serve. Keeping
the imports here means a reorganisation of core touches one file of serve.
"""
from __future__ import annotations

import msgpack

from actorium.core.objects import serialization
from actorium.core.wire import protocol, transport
from actorium.core.actor import ActorClass, ActorHandle, ActorMethod, handle_from_info
from actorium.core.api import cancel, get, get_actor, kill, nodes, remote
from actorium.core.wire.auth import process_token
from actorium.core.objects.object_ref import ObjectRef, ObjectRefGenerator
from actorium.core.objects import object_ref as _object_ref
from actorium.exceptions import ActorDiedError
from actorium.durable.sessions import NAMESPACE as SESSION_NAMESPACE
from actorium.durable.sessions import session
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "ObjectRef", "ObjectRefGenerator",
           "NodeAffinitySchedulingStrategy", "SESSION_NAMESPACE", "cancel", "current_worker",
           "get", "get_actor", "handle_for", "kill", "kv_get", "kv_put", "list_actors", "nodes", "process_token", "ready", "restarted", "remote", "session"]


def current_worker():
    """This process's core worker, or None before ``init``/after ``shutdown``: the
    identity a per-process router is tied to."""
    return _object_ref._worker


def restarted() -> bool:
    """Whether the actor running this code is a restart (its process died before)."""
    worker = current_worker()
    return worker is not None and worker.restarts > 0


def ready(handle: ActorHandle) -> ObjectRef:
    """A ref resolved once the actor has been constructed (its ``__init__`` ran), or
    with its construction error."""
    return ActorMethod(handle, "__actorium_ready__", 1).remote()


def as_actor_class(cls) -> ActorClass:
    """A plain class or an ``@actorium.remote`` class, as an ActorClass."""
    if isinstance(cls, ActorClass):
        return cls
    if isinstance(cls, type):
        return remote(cls)
    raise TypeError(f"deploy() expects a class or an @actorium.remote class, got "
                    f"{type(cls).__name__}")


def method_table(actor_cls: ActorClass) -> dict:
    """Public method name -> num_returns ("streaming" for generators)."""
    return {name: m["num_returns"] for name, m in actor_cls._methods.items()
            if not name.startswith("_")}


def class_name(actor_cls: ActorClass) -> str:
    return actor_cls._name


def kv_put(key: bytes, value, raw: bool = False) -> None:
    """Store ``value`` (msgpack-able; bytes as they are with ``raw``) in the gcs
    key-value table under ``key`` (persisted with the gcs's tables)."""
    data = value if raw else msgpack.packb(value)
    _gcs(protocol.KvPut(transport.next_req_id(), key, data, True))


def kv_get(key: bytes, raw: bool = False):
    """The value under ``key`` (None if absent or empty)."""
    data = _gcs(protocol.KvGet(transport.next_req_id(), key))
    if not data:
        return None
    return data if raw else msgpack.unpackb(data)


def list_actors() -> list:
    """Every actor the gcs knows: dicts with actor_id, name, namespace, state, meta."""
    return _gcs(protocol.ListState(transport.next_req_id(), "actors"))


def handle_for(info: dict) -> ActorHandle:
    return handle_from_info(info)


def _gcs(msg, timeout: float = 5.0):
    worker = current_worker()
    if worker is None:
        raise RuntimeError("actorium is not initialized")
    return worker.rpc_gcs(msg, timeout=timeout)


def on_done(ref: ObjectRef, fn) -> None:
    """Call ``fn(actor_died)`` once ``ref`` has a value or an error — on the core
    worker's I/O thread, or at once if it has one already; ``actor_died`` tells whether
    the error is that the actor is dead. Cheaper than ``ref.future()``: a value is not
    deserialized (only an error is). The callback holds ``ref``, so its entry outlives
    the caller's copy until the value arrives."""
    worker = current_worker()

    def done(_object_id, value, _keep=ref):
        fn(_actor_died(value))
    value = worker.refs.add_waiter(ref.id, ref.owner, done)
    if value is not None:
        fn(_actor_died(value))


def _actor_died(value) -> bool:
    if not value or value[0] != serialization.VALUE_ERROR:
        return False
    try:
        return isinstance(serialization.load_error(value[1]).exception, ActorDiedError)
    except Exception:
        return False


def method_signatures(actor_cls: ActorClass) -> dict:
    """Public method name -> its signature without ``self`` (to check HTTP arguments
    in the ingress before a call is sent)."""
    import inspect
    out = {}
    for name in method_table(actor_cls):
        try:
            sig = inspect.signature(getattr(actor_cls._cls, name))
            params = list(sig.parameters.values())
            if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                             params[0].POSITIONAL_OR_KEYWORD) \
                    and not isinstance(inspect.getattr_static(actor_cls._cls, name),
                                       (staticmethod, classmethod)):
                params = params[1:]
            out[name] = sig.replace(parameters=params)
        except (TypeError, ValueError):
            out[name] = None  # builtin or unintrospectable: the replica checks
    return out
