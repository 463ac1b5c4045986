"""Zero-copy reads of pickle-protocol-5 payloads with out-of-band numpy buffers."""
import os
import pickle
import time
import uuid

import numpy as np
import pytest

from actorium.objectstore import ObjectStore

_ALIGN = 64


def _serialize(value):
    """(parts, header_len, [(start, end), ...]) with buffers 64-byte aligned."""
    buffers = []
    header = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    parts, offsets, offset = [header], [], len(header)
    for buf in buffers:
        raw = buf.raw()
        pad = -offset % _ALIGN
        parts.append(b"\0" * pad)
        offset += pad
        parts.append(raw)
        offsets.append((offset, offset + raw.nbytes))
        offset += raw.nbytes
    return parts, len(header), offsets


def _deserialize(view, header_len, offsets):
    return pickle.loads(view[:header_len], buffers=[view[a:b] for a, b in offsets])


@pytest.fixture
def shm_store():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    root = f"/dev/shm/actorium-test-{uuid.uuid4().hex}"
    store = ObjectStore(root, 512 * 1024 * 1024, create=True)
    yield store
    store.close()
    ObjectStore.destroy(root)
    assert not os.path.exists(root)


def test_numpy_array_is_read_only_view_into_the_mapping(shm_store):
    array = np.arange(1000, dtype=np.float64)
    parts, header_len, offsets = _serialize(array)
    shm_store.put(b"arr", parts)
    view = shm_store.get(b"arr")
    result = _deserialize(view, header_len, offsets)
    mapped = np.frombuffer(view, np.uint8)
    assert np.array_equal(result, array)
    assert result.flags.writeable is False
    assert np.shares_memory(result, mapped)
    start = mapped.__array_interface__["data"][0]
    address = result.__array_interface__["data"][0]
    assert start <= address and address + result.nbytes <= start + mapped.nbytes
    with pytest.raises(ValueError):
        result[0] = 1.0


def test_100mib_read_does_not_copy(shm_store):
    array = np.random.default_rng(0).random(100 * 1024 * 1024 // 8)
    parts, header_len, offsets = _serialize(array)
    t0 = time.perf_counter()
    shm_store.put(b"big", parts)
    t1 = time.perf_counter()
    result = _deserialize(shm_store.get(b"big"), header_len, offsets)
    t2 = time.perf_counter()
    copied = result.copy()
    t3 = time.perf_counter()
    print(f"\n100 MiB: put {1e3 * (t1 - t0):.1f} ms, zero-copy get+loads "
          f"{1e3 * (t2 - t1):.3f} ms, one copy {1e3 * (t3 - t2):.1f} ms")
    assert result.flags.writeable is False
    assert not np.shares_memory(result, array)
    assert np.array_equal(result[:: 1 << 16], array[:: 1 << 16])
    assert np.array_equal(copied, array)
