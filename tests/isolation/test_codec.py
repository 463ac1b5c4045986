"""Data-only codec: round trips, refusals with paths, and hostile input handling."""
import os
import pickle

import msgpack
import numpy as np
import pytest

from actorium.isolation import codec
from actorium.isolation.codec import CodecError, DecodeError, decode, encode


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64 - 1, 1.5, float("inf"),
    "", "héllo", b"", b"\x00\xff", [], [1, [2, [3]]], (), (1, (2, "x")),
    {"a": 1, 2: "b", b"k": [None]}, {"nested": {"t": (1, 2)}},
])
def test_roundtrip_plain_values(value):
    assert decode(encode(value)) == value
    assert type(decode(encode(value))) is type(value)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "float32",
                                   "float64", "complex128", ">i4"])
def test_roundtrip_numpy_arrays(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) % 2).astype(dtype)
    out = decode(encode(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert np.array_equal(out, arr)
    assert out.flags.writeable


def test_non_contiguous_array_roundtrip():
    arr = np.arange(20).reshape(4, 5)[:, ::2]
    assert np.array_equal(decode(encode(arr)), arr)


def test_numpy_scalar_becomes_python_scalar():
    assert decode(encode({"x": np.float64(2.5), "n": np.int32(3)})) == {"x": 2.5, "n": 3}


def test_subclasses_encode_as_base_type():
    from collections import namedtuple, OrderedDict
    P = namedtuple("P", "x y")
    assert decode(encode([P(1, 2), OrderedDict(a=1), bytearray(b"z")])) == [(1, 2), {"a": 1}, b"z"]


@pytest.mark.parametrize("value,needle", [
    ({"a": [1, {2, 3}]}, "set"),
    ({"f": lambda: 1}, "function"),
    ([object()], "object"),
    ({"c": 1j}, "complex"),
    ({(1, 2): 3}, "tuple"),
    (np.array([object()], dtype=object), "dtype object"),
    (np.zeros(2, dtype=[("a", "i4")]), "dtype"),
    (2 ** 64, "64 bits"),
])
def test_refuses_unsupported_types_with_type_and_path(value, needle):
    with pytest.raises(CodecError) as ei:
        encode(value)
    assert needle in str(ei.value)
    assert "value" in str(ei.value)
    assert isinstance(ei.value, TypeError)


def test_error_names_the_path():
    with pytest.raises(CodecError, match=r"value\['rows'\]\[1\]"):
        encode({"rows": [1, {3}]})


def test_cycle_is_refused_not_infinite():
    a = []
    a.append(a)
    with pytest.raises(CodecError, match="deeper"):
        encode(a)


def test_decode_never_unpickles(tmp_path):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    payload = pickle.dumps(Evil())
    out = decode(encode(payload))
    assert out == payload and isinstance(out, bytes)
    with pytest.raises(DecodeError):
        decode(payload)  # a raw pickle is not a codec message
    assert not sentinel.exists()


def test_decode_rejects_unknown_ext_and_timestamp():
    with pytest.raises(DecodeError):
        decode(msgpack.packb(msgpack.ExtType(42, b"x")))
    with pytest.raises(DecodeError):
        decode(msgpack.packb(msgpack.Timestamp(1, 0), datetime=False))


def test_decode_rejects_object_dtype_array_payload():
    bad = msgpack.ExtType(2, msgpack.packb(["|O", [1], b"\x00" * 8], use_bin_type=True))
    with pytest.raises(DecodeError, match="dtype"):
        decode(msgpack.packb(bad))


def test_decode_rejects_lying_array_length_before_allocating():
    bad = msgpack.ExtType(2, msgpack.packb(["<f8", [10 ** 12], b""], use_bin_type=True))
    with pytest.raises(DecodeError, match="length"):
        decode(msgpack.packb(bad))


def test_decode_size_limit():
    with pytest.raises(DecodeError, match="exceeds"):
        decode(encode(b"x" * 1000), max_bytes=100)


def test_decode_depth_limit_on_nested_tuples():
    v = ()
    for _ in range(200):
        v = (v,)
    data = encode(v, max_depth=500)
    with pytest.raises(DecodeError):
        decode(data)


def test_decode_depth_limit_on_nested_lists():
    data = b"\x91" * 100 + b"\xc0"
    with pytest.raises(DecodeError):
        decode(data)


@pytest.mark.parametrize("junk", [b"", b"\xc1", b"\xd9\x05ab", b"\xa2\xff\xfe", b"\x01\x02"])
def test_decode_malformed_raises_decode_error(junk):
    with pytest.raises(DecodeError):
        decode(junk)


def test_codec_does_not_import_numpy_for_plain_values():
    import subprocess, sys
    code = ("import sys; from actorium.isolation.codec import encode, decode; "
            "decode(encode({'a': [1, (2,)]})); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "False", out.stderr
