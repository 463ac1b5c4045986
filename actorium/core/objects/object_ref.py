"""ObjectRef: a small picklable value naming an object and the process that owns it.

Creating a ref in a process counts one local reference in that process's core worker;
dropping it uncounts it. Pickling a ref (inside arguments or values) tells the
serializer it is nested, so the owner can keep the object alive for the borrower.
"""
from __future__ import annotations

import asyncio
import concurrent.futures

from actorium.core.objects import serialization

_worker = None  # the process's CoreWorker, set by core_worker.set_global_worker
# Registered by core/api.py: starts an embedded cluster when the API is used before
# init(), as Ray does. A hook, because this module sits below the api (architecture.md).
_auto_init = None


def set_auto_init(hook) -> None:
    global _auto_init
    _auto_init = hook


def _current():
    if _worker is None:  # the one check every call already made: auto-init costs nothing
        if _auto_init is None:
            raise RuntimeError("actorium is not initialized: call actorium.init() first")
        _auto_init()
    return _worker


class ObjectRef:
    __slots__ = ("id", "owner", "_counted", "__weakref__")

    def __init__(self, object_id: bytes, owner: str, *, _count: bool = True):
        self.id = object_id
        self.owner = owner
        self._counted = False
        if _count and _worker is not None:
            _worker.refs.add_local(object_id, owner)
            self._counted = True

    def hex(self) -> str:
        return self.id.hex()

    def binary(self) -> bytes:
        return self.id

    def task_id(self) -> bytes:
        return self.id[:14]

    def __repr__(self) -> str:
        return f"ObjectRef({self.id.hex()})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectRef) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self):
        serialization.note_contained_ref(self)
        return (_rebuild_ref, (self.id, self.owner))

    def __del__(self):
        if self._counted:
            worker = _worker
            if worker is not None:
                worker.refs.remove_local(self.id)

    def future(self) -> concurrent.futures.Future:
        """A concurrent.futures.Future resolved with the value (or the error)."""
        return _current().future_for(self)

    def __await__(self):
        return asyncio.wrap_future(self.future()).__await__()

    def as_future(self) -> asyncio.Future:
        return asyncio.wrap_future(self.future())


def _rebuild_ref(object_id: bytes, owner: str) -> ObjectRef:
    ref = ObjectRef(object_id, owner)
    if _worker is not None and owner != _worker.owner_addr:
        _worker.refs.note_borrowed(object_id, owner)
    return ref


class ObjectRefGenerator:
    """Iterates the refs a streaming task yields, in order, as they are produced.

    ``next()`` blocks until the next item exists; ``StopIteration`` after the last one.
    A failure of the generator surfaces as an error value in the final ref.
    """

    def __init__(self, task_ref: ObjectRef, stream):
        self._task_ref = task_ref  # keeps the stream's bookkeeping alive
        self._stream = stream
        self._next = 0

    def __iter__(self):
        return self

    def __next__(self) -> ObjectRef:
        ref = self._stream.wait_item(self._next, timeout=None)
        if ref is None:
            raise StopIteration
        self._next += 1
        return ref

    def next_ready(self, timeout: float | None = None) -> ObjectRef:
        ref = self._stream.wait_item(self._next, timeout=timeout)
        if ref is None:
            raise StopIteration
        self._next += 1
        return ref

    def __aiter__(self):
        return self

    async def __anext__(self) -> ObjectRef:
        fut = self._stream.future_item(self._next)
        ref = await asyncio.wrap_future(fut)
        if ref is None:
            raise StopAsyncIteration
        self._next += 1
        return ref

    def completed(self) -> ObjectRef:
        return self._task_ref

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_ref.hex()})"


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task's ref (Ray's name): the refs of
    every item its generator yielded, in order, known once the generator finished.

    Iterate it (more than once if you like) and ``get`` each ref; ``len`` is the item
    count. It pickles with its refs, so it can be passed on to other tasks."""

    def __init__(self, refs):
        self._refs = list(refs)

    def __iter__(self):
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"
