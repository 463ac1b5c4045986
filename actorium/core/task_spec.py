"""What an owner remembers about a task or actor call it submitted, and how its
arguments are packed: top-level refs become slots resolved before the call."""
from __future__ import annotations

from actorium.core import serialization
from actorium.core.object_ref import ObjectRef


class Slot:
    """Stands in for a top-level ObjectRef argument until its value is known."""
    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self):
        return (Slot, (self.index,))


class TaskSpec:
    """One submission. ``holds`` keeps every ref the task needs alive until it ends."""
    __slots__ = ("task_id", "kind", "fn_id", "name", "args", "slots", "resolved",
                 "num_returns", "return_ids", "key", "shape", "retries_left",
                 "retry_exceptions", "actor_id", "method", "seq", "cancelled", "lease",
                 "pending_deps", "holds", "stream", "job", "failed", "request_key", "strategy",
                 "lineage", "ordered", "parent")

    def __init__(self, task_id, kind, name, args, slots, num_returns, return_ids, job):
        self.task_id = task_id
        self.kind = kind  # "task" | "actor"
        self.fn_id = b""
        self.name = name
        self.args = args
        self.slots = slots  # [(slot index, ObjectRef)]
        self.resolved: list = []
        self.num_returns = num_returns
        self.return_ids = return_ids
        self.key = None
        self.shape = None
        self.retries_left = 0
        self.retry_exceptions = False
        self.actor_id = b""
        self.method = ""
        self.seq = 0
        self.cancelled = False
        self.lease = None
        self.pending_deps = 0
        self.holds: list = []
        self.stream = None
        self.job = job
        self.failed = False
        self.request_key = b""  # actor calls: .options(request_id=...) for durable actors
        self.strategy = None  # wire form (placement.normalize)
        self.lineage = False  # kept after finishing, to rebuild a lost result
        self.ordered = False  # actor calls: sent only after every earlier call of this caller
        self.parent = b""  # the task that submitted it, for recursive cancel


def pack_arguments(args: tuple, kwargs: dict, put):
    """Serialize (args, kwargs) with top-level refs replaced by slots.

    Returns (blob, slots, holds). Large plain arguments are ``put`` into the object store
    first and passed as slots too, so a task message stays small."""
    if not args and not kwargs:
        return serialization._EMPTY_ARGS, [], []
    slots: list = []
    if any(isinstance(a, ObjectRef) for a in args) or any(
            isinstance(v, ObjectRef) for v in kwargs.values()):
        args, kwargs = _slot_refs(args, kwargs, slots)
    ser = serialization.serialize((args, kwargs)) if kwargs else _serialize_positional(args)
    if ser.size > serialization.INLINE_MAX:
        args = tuple(put(a) if not isinstance(a, Slot) else a for a in args)
        kwargs = {k: (put(v) if not isinstance(v, Slot) else v) for k, v in kwargs.items()}
        args, kwargs = _slot_refs(args, kwargs, slots)
        ser = serialization.serialize((args, kwargs))
    holds = [ref for _, ref in slots] + ser.contained
    return ser.to_bytes(), slots, holds


def submit_and_return(cw, spec, submit):
    """Create the caller's refs for ``spec``, hand it to ``submit`` on the I/O thread, and
    return what ``.remote()`` returns: one ref, a list, None, or a streaming generator."""
    from actorium.core.object_ref import ObjectRef, ObjectRefGenerator
    refs = [ObjectRef(oid, cw.owner_addr) for oid in spec.return_ids]
    spec.parent = cw.current_task_id
    if spec.num_returns.__class__ is str:  # "streaming" or "dynamic": items arrive one by one
        from actorium.core.stream import Stream
        spec.stream = Stream(cw, spec.task_id)
        cw.post(submit, spec)
        if spec.num_returns == "streaming":
            return ObjectRefGenerator(refs[0], spec.stream)
        return refs[0]  # "dynamic": its value is the DynamicObjectRefGenerator
    cw.post(submit, spec)
    if len(refs) == 1:
        return refs[0]
    return refs if refs else None


def _serialize_positional(args: tuple):
    """(args, {}) with a fast path when every argument is a plain scalar."""
    if serialization._is_plain(args):
        import pickle
        pk = pickle.dumps((args, {}), protocol=5)
        return serialization.Serialized([b"P" + pk], 1 + len(pk), [])
    return serialization.serialize((args, {}))


def _slot_refs(args, kwargs, slots):
    def swap(v):
        if isinstance(v, ObjectRef):
            slots.append((len(slots), v))
            return Slot(len(slots) - 1)
        return v
    return tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()}


def unpack_arguments(blob: bytes, values: dict):
    """Inverse of pack_arguments in the executing worker; ``values`` maps slot -> value."""
    args, kwargs = serialization.deserialize(blob)
    if values:
        args = tuple(values[a.index] if isinstance(a, Slot) else a for a in args)
        kwargs = {k: (values[v.index] if isinstance(v, Slot) else v) for k, v in kwargs.items()}
    return args, kwargs
