"""``actorium.util.queue.Queue`` as Ray documents it: an actor-backed FIFO queue that
tasks and actors share, with maxsize, blocking and non-blocking put/get, timeouts,
batches, async variants and the ``Empty``/``Full`` exceptions."""
from __future__ import annotations

import asyncio
import queue as stdlib_queue

import pytest

import actorium
from actorium.util.queue import Empty, Full, Queue


@pytest.fixture
def q(shared_cluster):
    queue = Queue()
    yield queue
    queue.shutdown()


def test_items_come_out_in_the_order_they_went_in(q):
    for i in range(5):
        q.put(i)
    assert [q.get(timeout=10) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_size_empty_and_full(shared_cluster):
    q = Queue(maxsize=2)
    assert (q.qsize(), len(q), q.empty(), q.full()) == (0, 0, True, False)
    q.put("a")
    q.put("b")
    assert (q.size(), q.empty(), q.full()) == (2, False, True)
    q.shutdown()


def test_get_nowait_on_an_empty_queue_raises_empty(q):
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(block=False)


def test_empty_and_full_are_the_standard_library_exceptions():
    assert issubclass(Empty, stdlib_queue.Empty) and issubclass(Full, stdlib_queue.Full)


def test_put_nowait_on_a_full_queue_raises_full(shared_cluster):
    q = Queue(maxsize=1)
    q.put_nowait(1)
    with pytest.raises(Full):
        q.put_nowait(2)
    with pytest.raises(Full):
        q.put(2, block=False)
    q.shutdown()


def test_get_with_timeout_raises_empty_when_nothing_comes(q):
    with pytest.raises(Empty):
        q.get(timeout=0.1)


def test_put_with_timeout_raises_full_when_no_room_comes(shared_cluster):
    q = Queue(maxsize=1)
    q.put(1)
    with pytest.raises(Full):
        q.put(2, timeout=0.1)
    assert q.get(timeout=10) == 1
    q.shutdown()


def test_negative_timeout_is_refused(q):
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1)


@actorium.remote
def produce(queue, items):
    for item in items:
        queue.put(item, timeout=30)
    return len(items)


@actorium.remote
def consume(queue, n):
    return [queue.get(timeout=30) for _ in range(n)]


def test_a_blocked_get_receives_an_item_put_by_a_task(q):
    consumer = consume.remote(q, 3)
    assert actorium.get(produce.remote(q, ["x", "y", "z"]), timeout=30) == 3
    assert actorium.get(consumer, timeout=30) == ["x", "y", "z"]


def test_a_blocked_put_goes_in_once_room_is_made(shared_cluster):
    q = Queue(maxsize=1)
    q.put("first")
    producer = produce.remote(q, ["second"])  # blocks in the actor: the queue is full
    assert q.get(timeout=10) == "first"
    assert actorium.get(producer, timeout=30) == 1
    assert q.get(timeout=10) == "second"
    q.shutdown()


def test_put_nowait_batch_is_all_or_nothing(shared_cluster):
    q = Queue(maxsize=3)
    q.put_nowait_batch([1, 2])
    with pytest.raises(Full):
        q.put_nowait_batch([3, 4])
    assert q.qsize() == 2
    assert q.get_nowait_batch(2) == [1, 2]
    q.shutdown()


def test_get_nowait_batch_is_all_or_nothing(q):
    q.put_nowait_batch(range(3))
    with pytest.raises(Empty):
        q.get_nowait_batch(4)
    assert q.get_nowait_batch(3) == [0, 1, 2]
    assert q.get_nowait_batch(0) == []


def test_batch_arguments_are_checked(q):
    with pytest.raises(TypeError):
        q.put_nowait_batch(5)
    with pytest.raises(TypeError):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)


def test_async_put_and_get(q):
    async def roundtrip():
        await q.put_async("a")
        await q.put_async("b", block=False)
        first = await q.get_async(timeout=10)
        second = await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.05)
        return first, second
    assert asyncio.run(roundtrip()) == ("a", "b")


def test_actor_options_configure_the_queue_actor(shared_cluster):
    q = Queue(actor_options={"name": "shared-queue"})
    q.put("hello")
    same = actorium.get_actor("shared-queue")
    assert same == q.actor
    assert q.get(timeout=10) == "hello"
    q.shutdown()


def test_a_shut_down_queue_refuses_use(shared_cluster):
    q = Queue()
    q.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        q.put(1)
