"""Objects: put/get/wait, zero-copy numpy, reference counting and spilling."""
from __future__ import annotations

import asyncio
import gc
import time

import numpy as np
import pytest

import actorium




def test_put_and_get_roundtrip_small_values(shared_cluster):
    for value in (1, "text", {"a": [1, 2]}, None, b"bytes"):
        assert actorium.get(actorium.put(value)) == value


def test_get_of_a_list_keeps_order(shared_cluster):
    refs = [actorium.put(i) for i in range(100)]
    assert actorium.get(refs) == list(range(100))


def test_large_numpy_array_is_read_back_zero_copy_and_read_only(shared_cluster):
    arr = np.arange(100 * 1024 * 1024 // 8, dtype=np.int64)
    ref = actorium.put(arr)
    out = actorium.get(ref)
    assert np.array_equal(out[:10], arr[:10]) and out.shape == arr.shape
    assert not out.flags.writeable
    assert not out.flags.owndata  # a view on the shared-memory mapping, not a copy
    start = time.perf_counter()
    for _ in range(10):
        actorium.get(ref)
    per_get = (time.perf_counter() - start) / 10
    start = time.perf_counter()
    arr.copy()
    copy = time.perf_counter() - start
    assert per_get * 10 < copy, (per_get, copy)


def test_tasks_receive_large_arrays_from_the_store(shared_cluster):
    @actorium.remote
    def total(a):
        return int(a.sum()), a.flags.writeable

    arr = np.ones(1 << 20, dtype=np.int64)
    assert actorium.get(total.remote(actorium.put(arr))) == (1 << 20, False)


def test_refs_held_by_a_pending_task_keep_the_object_alive(shared_cluster):
    @actorium.remote
    def later(x, gate):
        return len(x)

    @actorium.remote
    def slow_gate():
        time.sleep(0.5)
        return 0

    ref = actorium.put(b"z" * (2 << 20))
    result = later.remote(ref, slow_gate.remote())
    del ref
    gc.collect()
    assert actorium.get(result, timeout=30) == 2 << 20


def test_refs_nested_in_an_object_keep_the_inner_object_alive(shared_cluster):
    inner = actorium.put(b"i" * (1 << 20))
    outer = actorium.put([inner])
    del inner
    gc.collect()
    assert len(actorium.get(actorium.get(outer)[0])) == 1 << 20


def test_wait_returns_ready_refs_first(shared_cluster):
    @actorium.remote
    def sleepy(t):
        time.sleep(t)
        return t

    fast, slow = sleepy.remote(0), sleepy.remote(10)
    ready, not_ready = actorium.wait([slow, fast], num_returns=1, timeout=5)
    assert ready == [fast] and not_ready == [slow]
    actorium.cancel(slow, force=True)


def test_wait_with_timeout_returns_what_is_ready(shared_cluster):
    ref = actorium.put(1)
    ready, not_ready = actorium.wait([ref], num_returns=1, timeout=0)
    assert ready == [ref] and not_ready == []


def test_await_ref_in_async_code(shared_cluster):
    @actorium.remote
    def three():
        return 3

    async def main():
        return await three.remote() + await actorium.put(4)

    assert asyncio.run(main()) == 7


def test_streaming_generator_yields_refs_as_produced(shared_cluster):
    @actorium.remote(num_returns="streaming")
    def tokens(n):
        for i in range(n):
            yield f"tok{i}"

    gen = tokens.remote(5)
    assert [actorium.get(r) for r in gen] == [f"tok{i}" for i in range(5)]


def test_streaming_generator_error_is_the_last_item(shared_cluster):
    @actorium.remote(num_returns="streaming")
    def broken():
        yield 1
        raise ValueError("stream broke")

    refs = list(broken.remote())
    assert actorium.get(refs[0]) == 1
    with pytest.raises(ValueError, match="stream broke"):
        actorium.get(refs[1])


def test_streaming_actor_method(shared_cluster):
    @actorium.remote
    class Model:
        def generate(self, prompt):
            for word in prompt.split():
                yield word.upper()

    m = Model.remote()
    out = [actorium.get(r) for r in m.generate.options(num_returns="streaming").remote("a b c")]
    assert out == ["A", "B", "C"]


def test_async_iteration_over_a_stream(shared_cluster):
    @actorium.remote(num_returns="streaming")
    def count(n):
        yield from range(n)

    async def main():
        return [await ref async for ref in count.remote(3)]

    assert asyncio.run(main()) == [0, 1, 2]
