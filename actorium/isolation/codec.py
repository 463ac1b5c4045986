"""Data-only codec: the only way a value leaves a sandbox.

Invariants
----------
* ``decode`` never executes code and never imports anything but numpy (and only when
  an array is present).  It is msgpack with two extension types and nothing else:
  no pickle, no ``__reduce__``, no class lookup by name.
* The accepted value space is closed: None, bool, int (64-bit), float, str, bytes, list,
  tuple, dict (keys: str | int | bytes) and numpy arrays of plain numeric/bool dtypes.
  ``encode`` rejects anything else with ``CodecError`` (a ``TypeError``) that names the
  offending type and the path to it (``value['rows'][3]``).
* ``decode`` enforces a size limit on the input and a depth limit on the structure, and
  validates every node after unpacking, so a hostile producer (the sandbox) can at worst
  make the parent raise ``DecodeError``.

Conversions on encode (documented, lossy only in type, not in data): subclasses of the
accepted builtins are encoded as their base type (a namedtuple comes back as a tuple),
bytearray/memoryview as bytes, numpy scalars of accepted kinds as Python scalars.
"""
from __future__ import annotations

import re
import sys

import msgpack

__all__ = ["encode", "decode", "CodecError", "DecodeError",
           "DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64

_EXT_TUPLE = 1
_EXT_NDARRAY = 2
# Plain numeric and bool dtypes only: bool, signed/unsigned int, float, complex.
# Object, void (structured), string, datetime dtypes are refused: object arrays would
# need pickle, and the others are not needed to carry results.
_DTYPE_RE = re.compile(r"^[<>|=]?[biufc][0-9]{1,2}$")
_MAX_NDIM = 32
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 64 - 1


class CodecError(TypeError):
    """A value cannot be carried by the data-only codec."""


class DecodeError(ValueError):
    """Bytes are not a valid data-only codec message (malformed, too big or too deep)."""


def _numpy():
    # numpy is imported lazily: importing it can start BLAS threads, and the sandbox
    # runner must stay single-threaded unless arrays are actually in play.
    return sys.modules.get("numpy")


def _path(base: str, key) -> str:
    return f"{base}[{key!r}]"


def _to_plain(value, path: str, depth: int, max_depth: int):
    """Validate ``value`` and convert it to something msgpack packs with strict types."""
    if depth > max_depth:
        raise CodecError(f"value nested deeper than {max_depth} levels at {path} "
                         "(or it contains a cycle)")
    if value is None or type(value) in (bool, str, bytes, float):
        return value
    if type(value) is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise CodecError(f"int at {path} does not fit in 64 bits")
        return value
    np = _numpy()
    if np is not None and isinstance(value, np.ndarray):
        return _array_ext(value, path, np)
    if np is not None and isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise CodecError(f"cannot encode numpy scalar of dtype {value.dtype} at {path}")
        return _to_plain(value.item(), path, depth, max_depth)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return bool(value)
    if isinstance(value, int):
        return _to_plain(int(value), path, depth, max_depth)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, tuple):
        items = [_to_plain(v, _path(path, i), depth + 1, max_depth)
                 for i, v in enumerate(value)]
        return msgpack.ExtType(_EXT_TUPLE, _pack(items))
    if isinstance(value, list):
        return [_to_plain(v, _path(path, i), depth + 1, max_depth)
                for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, (str, int, bytes)):
                raise CodecError(f"dict key of type {type(k).__qualname__} at {path} "
                                 "(keys must be str, int or bytes)")
            k = _to_plain(k, path, depth + 1, max_depth)
            out[k] = _to_plain(v, _path(path, k), depth + 1, max_depth)
        return out
    t = type(value)
    raise CodecError(f"cannot encode value of type {t.__module__}.{t.__qualname__} "
                     f"at {path}: the sandbox codec carries only None, bool, int, float, "
                     "str, bytes, list, tuple, dict and numeric numpy arrays")


def _array_ext(arr, path: str, np) -> msgpack.ExtType:
    dt = arr.dtype
    if dt.kind not in "biufc" or dt.fields is not None or dt.subdtype is not None:
        raise CodecError(f"cannot encode numpy array of dtype {dt} at {path} "
                         "(only bool/int/uint/float/complex dtypes)")
    if arr.ndim > _MAX_NDIM:
        raise CodecError(f"numpy array at {path} has too many dimensions")
    raw = np.ascontiguousarray(arr).tobytes()
    return msgpack.ExtType(_EXT_NDARRAY, _pack([dt.str, list(arr.shape), raw]))


def _pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, strict_types=True)


def encode(value, *, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """Encode ``value`` or raise ``CodecError`` naming the offending type and path."""
    return _pack(_to_plain(value, "value", 0, max_depth))


class _Decoder:
    """One decode call; holds the depth budget shared by nested extension payloads."""

    def __init__(self, max_bytes: int, max_depth: int):
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.ext_depth = 0

    def unpack(self, data: bytes):
        try:
            return msgpack.unpackb(
                data, raw=False, use_list=True, strict_map_key=False,
                ext_hook=self._ext_hook,
                timestamp=0)
        except DecodeError:
            raise
        except RecursionError as e:
            raise DecodeError("message nested too deeply") from e
        except Exception as e:  # msgpack/unicode errors: all mean "malformed"
            raise DecodeError(f"malformed message: {type(e).__name__}: {e}") from e

    def _ext_hook(self, code: int, payload: bytes):
        self.ext_depth += 1
        try:
            if self.ext_depth > self.max_depth:
                raise DecodeError("message nested too deeply")
            if code == _EXT_TUPLE:
                items = self.unpack(payload)
                if not isinstance(items, list):
                    raise DecodeError("tuple payload is not a list")
                return tuple(items)
            if code == _EXT_NDARRAY:
                return self._ndarray(self.unpack(payload))
            raise DecodeError(f"unknown extension type {code}")
        finally:
            self.ext_depth -= 1

    @staticmethod
    def _ndarray(fields):
        if not (isinstance(fields, list) and len(fields) == 3):
            raise DecodeError("ndarray payload must be [dtype, shape, data]")
        dtype, shape, raw = fields
        if not isinstance(dtype, str) or not _DTYPE_RE.match(dtype):
            raise DecodeError(f"refused ndarray dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise DecodeError("bad ndarray shape")
        if not isinstance(raw, bytes):
            raise DecodeError("ndarray data must be bytes")
        import numpy as np  # only reached when an array is actually present
        dt = np.dtype(dtype)
        count = 1
        for d in shape:
            count *= d
        if count * dt.itemsize != len(raw):  # checked before any allocation
            raise DecodeError("ndarray data length does not match dtype and shape")
        return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def _validate(value, max_depth: int) -> None:
    """Iteratively check that the decoded tree holds only accepted types."""
    np = _numpy()
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > max_depth:
            raise DecodeError("message nested too deeply")
        t = type(v)
        if v is None or t in (bool, int, float, str, bytes):
            continue
        if t in (list, tuple):
            stack.extend((x, d + 1) for x in v)
        elif t is dict:
            for k, x in v.items():
                if type(k) not in (str, int, bytes):
                    raise DecodeError(f"refused dict key type {type(k).__name__}")
                stack.append((x, d + 1))
        elif np is not None and t is np.ndarray:
            continue
        else:
            raise DecodeError(f"refused decoded type {t.__name__}")


def decode(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
           max_depth: int = DEFAULT_MAX_DEPTH):
    """Decode bytes produced by ``encode``.  Never executes code; see module invariants."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("decode expects bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"message of {len(data)} bytes exceeds limit {max_bytes}")
    value = _Decoder(max_bytes, max_depth).unpack(data)
    _validate(value, max_depth)
    return value
