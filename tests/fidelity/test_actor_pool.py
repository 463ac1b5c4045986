"""``actorium.util.ActorPool`` as Ray documents it: work spread over idle actors,
queued while all are busy, results in submission order (``get_next``, ``map``) or as
they finish (``get_next_unordered``, ``map_unordered``), with timeouts."""
from __future__ import annotations

import pytest

import actorium
from actorium.util import ActorPool
from helpers import Gate, GatedDoubler


def work(actor, value):
    return actor.work.remote(value)


@pytest.fixture
def gated_pool(shared_cluster):
    gate = Gate.remote()
    actors = [GatedDoubler.remote(gate) for _ in range(2)]
    return gate, actors, ActorPool(actors)


def test_map_yields_results_in_submission_order(gated_pool):
    gate, _, pool = gated_pool
    results = pool.map(work, [1, 2, 3])
    for key in (3, 2, 1):  # the last value finishes first
        actorium.get(gate.open.remote(key), timeout=30)
    assert list(results) == [2, 4, 6]


def test_map_unordered_yields_results_as_they_finish(gated_pool):
    gate, _, pool = gated_pool
    results = pool.map_unordered(work, [1, 2])
    actorium.get(gate.open.remote(2), timeout=30)
    assert next(results) == 4
    actorium.get(gate.open.remote(1), timeout=30)
    assert next(results) == 2
    assert list(results) == []


def test_submit_waits_for_an_idle_actor_when_all_are_busy(gated_pool):
    gate, _, pool = gated_pool
    for v in (1, 2, 3):
        pool.submit(work, v)
    assert not pool.has_free() and pool.pop_idle() is None
    for v in (1, 2, 3):
        actorium.get(gate.open.remote(v), timeout=30)
    assert [pool.get_next(timeout=30) for _ in range(3)] == [2, 4, 6]
    assert not pool.has_next()
    assert pool.has_free()


def test_get_next_timeout_keeps_the_result_next(gated_pool):
    gate, _, pool = gated_pool
    pool.submit(work, 1)
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05)
    actorium.get(gate.open.remote(1), timeout=30)
    assert pool.get_next(timeout=30) == 2


def test_get_next_timeout_with_ignore_skips_the_result(gated_pool):
    gate, _, pool = gated_pool
    pool.submit(work, 1)
    pool.submit(work, 2)
    with pytest.raises(TimeoutError, match="ignored"):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)
    actorium.get(gate.open.remote(2), timeout=30)
    assert pool.get_next(timeout=30) == 4
    assert not pool.has_next()
    actorium.get(gate.open.remote(1), timeout=30)


def test_get_next_unordered_timeout_raises(gated_pool):
    gate, _, pool = gated_pool
    pool.submit(work, 1)
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.05)
    actorium.get(gate.open.remote(1), timeout=30)
    assert pool.get_next_unordered(timeout=30) == 2


def test_get_next_after_get_next_unordered_is_refused(gated_pool):
    gate, _, pool = gated_pool
    pool.submit(work, 1)
    pool.submit(work, 2)
    actorium.get(gate.open.remote(2), timeout=30)
    assert pool.get_next_unordered(timeout=30) == 4
    with pytest.raises(ValueError, match="get_next_unordered"):
        pool.get_next()
    actorium.get(gate.open.remote(1), timeout=30)
    assert pool.get_next_unordered(timeout=30) == 2


def test_get_next_on_a_drained_pool_raises_stop_iteration(gated_pool):
    _, _, pool = gated_pool
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_push_adds_an_actor_that_takes_waiting_work(gated_pool):
    gate, actors, _ = gated_pool
    pool = ActorPool([actors[0]])
    pool.submit(work, 1)
    pool.submit(work, 2)  # waits: the only actor is busy
    pool.push(actors[1])  # takes value 2 at once
    actorium.get(gate.open.remote(2), timeout=30)
    assert pool.get_next_unordered(timeout=30) == 4
    actorium.get(gate.open.remote(1), timeout=30)
    assert pool.get_next_unordered(timeout=30) == 2


def test_push_of_a_member_is_refused(gated_pool):
    _, actors, pool = gated_pool
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(actors[0])


def test_pop_idle_takes_an_actor_out_of_the_pool(gated_pool):
    _, actors, pool = gated_pool
    popped = {pool.pop_idle(), pool.pop_idle()}
    assert popped == set(actors)
    assert pool.pop_idle() is None and not pool.has_free()


def test_map_drops_results_nobody_took(gated_pool):
    gate, _, pool = gated_pool
    pool.submit(work, 1)  # never taken, not ready: skipped by map
    results = pool.map(work, [2])
    actorium.get(gate.open.remote(2), timeout=30)
    actorium.get(gate.open.remote(1), timeout=30)
    assert list(results) == [4]


def test_fn_must_return_refs(gated_pool):
    _, _, pool = gated_pool
    with pytest.raises(TypeError, match="must return an ObjectRef"):
        pool.submit(lambda actor, v: v, 1)
    assert pool.has_free()  # the actor was not lost
