"""A call's arguments: packed once by the caller, unpacked once by the worker.

Every kind of call goes through here: tasks, actor creation and actor calls, and so
sandboxed functions and actors too (they are submitted as a hosting task or actor).
``pack`` makes one pass over the top-level arguments and serializes each value at most
once:

* an ObjectRef becomes a *slot*: a dependency the owner's submitter resolves before it
  pushes the call, and whose value travels beside the blob (``TaskSpec.resolved``);
* a value too large to travel inline is put into the object store from its serialized
  bytes and becomes a slot as well, so a call message stays small;
* every other value is inline in the blob.

Blob layout (first byte is the tag):

* ``P`` + pickle of ``(args, kwargs)``: no slots and every value a plain scalar (the
  hot path of small calls: one C pickle);
* ``A`` + u32 header length + msgpack header ``[keyword names, entries]`` + the inline
  values' blobs back to back. One entry per argument, positional first: ``n >= 0`` is
  an inline value of ``n`` bytes (a ``serialization`` blob), ``n < 0`` is slot ``-n-1``.
"""
from __future__ import annotations

import pickle
import struct

import msgpack

from actorium.core.objects import serialization
from actorium.core.objects.object_ref import ObjectRef

_u32 = struct.Struct("<I")
EMPTY = b"P" + pickle.dumps(((), {}), protocol=5)


class Packed:
    """``blob``; ``slots`` [(slot, ObjectRef)] to resolve before the call; ``holds``, every
    ref the call needs alive until it ends (slots and refs nested in inline values)."""
    __slots__ = ("blob", "slots", "holds")

    def __init__(self, blob: bytes, slots: list, holds: list):
        self.blob = blob
        self.slots = slots
        self.holds = holds


def pack(args: tuple, kwargs: dict, put_serialized) -> Packed:
    """Pack a call's arguments. ``put_serialized(Serialized) -> ObjectRef`` stores a value
    too large to travel inline (the caller's core worker owns it)."""
    if not args and not kwargs:
        return Packed(EMPTY, [], [])
    if _all_plain(args) and (not kwargs or _all_plain(kwargs.values())):
        return Packed(b"P" + pickle.dumps((args, kwargs), protocol=5), [], [])
    slots: list = []
    holds: list = []
    entries: list = []
    pieces: list = []
    inline = 0
    for value in (*args, *kwargs.values()):
        if not isinstance(value, ObjectRef):
            ser = serialization.serialize(value)
            if inline + ser.size <= serialization.INLINE_MAX:
                inline += ser.size
                entries.append(ser.size)
                pieces.extend(ser.parts)
                holds.extend(ser.contained)
                continue
            value = put_serialized(ser)
        entries.append(-1 - len(slots))
        slots.append((len(slots), value))
        holds.append(value)
    header = msgpack.packb([list(kwargs), entries])
    return Packed(b"".join([b"A", _u32.pack(len(header)), header, *pieces]), slots, holds)


def unpack(blob, refs: list, materialize) -> tuple[tuple, dict]:
    """In the executing worker: the call's ``(args, kwargs)``. ``refs`` are the resolved
    slots, ``[slot, kind, data, size, ...]`` each; ``materialize(object_id, value)`` reads
    one (from the message, the local store or another node)."""
    view = memoryview(blob)
    if view[0] == 0x50:  # P
        return pickle.loads(view[1:])
    (hlen,) = _u32.unpack_from(view, 1)
    names, entries = msgpack.unpackb(view[5:5 + hlen])
    slots = {}
    for slot, *value in refs:
        slots[slot] = materialize(
            value[1] if value[0] == serialization.VALUE_STORED else b"", value)
    offset = 5 + hlen
    values = []
    for n in entries:
        if n < 0:
            values.append(slots[-1 - n])
        else:
            values.append(serialization.deserialize(view[offset:offset + n]))
            offset += n
    positional = len(values) - len(names)
    return tuple(values[:positional]), dict(zip(names, values[positional:]))


def _all_plain(values) -> bool:
    """Plain scalars only, pickled alike by the C pickler and cloudpickle (no refs)."""
    plain = serialization.PLAIN_SCALARS
    for v in values:
        t = type(v)
        if t not in plain or (t is bytes and len(v) > 1024):
            return False
    return True
