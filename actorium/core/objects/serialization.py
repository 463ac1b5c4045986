"""Turning user values into bytes and back.

Blob layout (first byte is the tag):

* ``P`` + pickle — values without out-of-band buffers.
* ``B`` + u32 header length + msgpack ``[pickle_len, [buffer_len, ...]]`` + padding to 64,
  then the pickle, then each buffer, every part starting on a 64-byte boundary. Buffers
  come from pickle protocol 5, so numpy arrays read back from a shared-memory mapping
  are zero-copy (and read-only, because the mapping is).
* ``E`` + pickle of an ``ErrorValue`` — a task failed; reading the value raises it.

cloudpickle writes; plain ``pickle`` reads (cloudpickle output is standard pickle).
Only values from authenticated cluster peers are ever passed to ``deserialize``.
"""
from __future__ import annotations

import io
import pickle
import struct
import threading
import traceback
import warnings
from dataclasses import dataclass

import cloudpickle
import msgpack

from actorium.exceptions import TaskError

INLINE_MAX = 100 * 1024
ALIGN = 64
_u32 = struct.Struct("<I")

# How a resolved value travels in a message: [kind, data, size].
VALUE_INLINE = 0   # data is the blob itself
VALUE_STORED = 1   # data is the object id; the blob lives in the node's object store
VALUE_ERROR = 2    # data is an ``E`` blob

_context = threading.local()


class SerializationError(TypeError):
    """A value could not be serialized; the message names the value and why."""


@dataclass(slots=True)
class Serialized:
    """A serialized value: ``parts`` concatenated give the blob of ``size`` bytes."""
    parts: list
    size: int
    contained: list  # ObjectRefs nested in the value

    def to_bytes(self) -> bytes:
        if len(self.parts) == 1:
            return bytes(self.parts[0])
        return b"".join(self.parts)


def _pad(n: int) -> int:
    return (-n) % ALIGN


PLAIN_SCALARS = _PLAIN = (type(None), bool, int, float, str, bytes)


def _is_plain(value) -> bool:
    """Values the C pickler handles exactly like cloudpickle (no code, no refs)."""
    t = type(value)
    if t in _PLAIN:
        return t is not bytes or len(value) <= INLINE_MAX
    if t is tuple or t is list:
        return len(value) <= 16 and all(type(v) in _PLAIN and type(v) is not bytes for v in value)
    return False


def serialize(value) -> Serialized:
    """Serialize ``value``; nested ObjectRefs are collected into ``contained``.

    Plain scalars and small tuples of them take the C pickler (the hot path of small
    task arguments and results); everything else goes through cloudpickle."""
    if _is_plain(value):
        pk = pickle.dumps(value, protocol=5)
        return Serialized([b"P" + pk], 1 + len(pk), [])
    buffers: list[pickle.PickleBuffer] = []
    outer = getattr(_context, "refs", None)
    _context.refs = refs = []
    try:
        pk = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        raise SerializationError(
            f"Could not serialize {_describe(value)}: {type(exc).__name__}: {exc}") from exc
    finally:
        _context.refs = outer
    if not buffers:
        return Serialized([b"P", pk], 1 + len(pk), refs)
    raws = [b.raw() for b in buffers]
    header = msgpack.packb([len(pk), [r.nbytes for r in raws]])
    head = b"B" + _u32.pack(len(header)) + header
    parts: list = [head, b"\0" * _pad(len(head)), pk]
    offset = len(head) + _pad(len(head)) + len(pk)
    for raw in raws:
        pad = _pad(offset)
        if pad:
            parts.append(b"\0" * pad)
        parts.append(raw)
        offset += pad + raw.nbytes
    return Serialized(parts, offset, refs)


def note_contained_ref(ref) -> None:
    """Called by ObjectRef.__reduce__: remember the ref if a serialize() is collecting."""
    refs = getattr(_context, "refs", None)
    if refs is not None:
        refs.append(ref)


def deserialize(blob):
    """Rebuild a value from a blob (bytes or memoryview). Raises the stored error for ``E``."""
    view = memoryview(blob)
    tag = view[0]
    if tag == 0x50:  # P
        return pickle.loads(view[1:])
    if tag == 0x42:  # B
        (hlen,) = _u32.unpack_from(view, 1)
        pk_len, buf_lens = msgpack.unpackb(view[5:5 + hlen])
        offset = 5 + hlen
        offset += _pad(offset)
        pk = view[offset:offset + pk_len]
        offset += pk_len
        buffers = []
        for n in buf_lens:
            offset += _pad(offset)
            buffers.append(view[offset:offset + n])
            offset += n
        return pickle.loads(pk, buffers=buffers)
    if tag == 0x45:  # E
        raise load_error(view).to_exception()
    raise SerializationError(f"unknown blob tag {tag!r}")


@dataclass(slots=True)
class ErrorValue:
    """A failure stored in place of a value. ``exception`` is raised as-is for runtime
    errors (crashes, cancellation) and wrapped in TaskError for user exceptions."""
    exception: BaseException | None
    traceback: str
    function_name: str
    pid: int
    user_error: bool
    cause_class: str

    def to_exception(self) -> BaseException:
        if not self.user_error:
            return self.exception
        if isinstance(self.exception, TaskError):
            return self.exception  # already wrapped when it crossed an earlier hop
        err = TaskError(self.function_name, self.traceback, self.exception, self.pid,
                        self.cause_class)
        return err.as_instanceof_cause()


def error_blob(exc: BaseException, function_name: str = "", pid: int = 0,
               user_error: bool = True, tb: str | None = None) -> bytes:
    """Serialize a failure. If the exception itself cannot be pickled, its text survives."""
    text = tb if tb is not None else "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    err = ErrorValue(exc, text, function_name, pid, user_error, type(exc).__name__)
    try:
        return b"E" + cloudpickle.dumps(err, protocol=5)
    except Exception:
        err.exception = None if user_error else RuntimeError(str(exc))
        return b"E" + cloudpickle.dumps(err, protocol=5)


def load_error(blob) -> ErrorValue:
    return pickle.loads(memoryview(blob)[1:])


def _describe(value) -> str:
    try:
        text = repr(value)
    except Exception:
        text = object.__repr__(value)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"value {text} of type {type(value).__qualname__}"


# Ray's limits on a pickled remote function or actor class: what is captured travels
# with every worker that runs it; large data belongs in put().
FUNCTION_SIZE_WARN = 10 * 1024 * 1024
FUNCTION_SIZE_MAX = 95 * 1024 * 1024


def check_function_size(obj, size: int) -> None:
    kind = "actor class" if isinstance(obj, type) else "remote function"
    name = getattr(obj, "__qualname__", repr(obj))
    mib = size / (1024 * 1024)
    advice = ("Check that its definition is not implicitly capturing a large array or "
              "other object in scope. Tip: use actorium.put() to put large objects in the "
              "object store and pass the ref.")
    if size > FUNCTION_SIZE_MAX:
        raise ValueError(f"The {kind} {name} is too large ({mib:.0f} MiB > "
                         f"{FUNCTION_SIZE_MAX // (1024 * 1024)} MiB). {advice}")
    warnings.warn(f"The {kind} {name} is very large ({mib:.0f} MiB). {advice}",
                  UserWarning, stacklevel=4)


class _ClassPickler(cloudpickle.Pickler):
    """Pickles the functions and classes defined in a class body by value, with it.

    Through an actor class (an instance of a class derived from the user's), a static
    method or nested class is reachable as ``module.Foo.member``; cloudpickle would then
    pickle it by reference, which a worker cannot resolve when the module is not
    importable there (the class itself travels by value for that very reason)."""

    def __init__(self, file, members: set):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._members = members

    def reducer_override(self, obj):
        if id(obj) in self._members:
            if isinstance(obj, type):
                return cloudpickle.cloudpickle._dynamic_class_reduce(obj)
            return self._dynamic_function_reduce(obj)
        return super().reducer_override(obj)


def dumps_class(cls: type) -> bytes:
    """cloudpickle of an actor's class, its own members by value (see _ClassPickler)."""
    members = set()
    for klass in cls.__mro__[:-1]:
        for value in vars(klass).values():
            value = getattr(value, "__func__", value)  # staticmethod, classmethod
            # only the user's own module: a library's members keep their identity
            if (hasattr(value, "__code__") or isinstance(value, type)) and \
                    getattr(value, "__module__", None) == cls.__module__:
                members.add(id(value))
    buffer = io.BytesIO()
    try:
        _ClassPickler(buffer, members).dump(cls)
    except AttributeError:  # a cloudpickle without these internals: its default
        return cloudpickle.dumps(cls)
    return buffer.getvalue()
