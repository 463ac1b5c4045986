"""Actors: state, ordering, names, lifetimes, concurrency modes, death and restarts."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import actorium
from actorium.exceptions import ActorDiedError


@actorium.remote
class Counter:
    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def pid(self):
        return os.getpid()

    def fail(self):
        raise KeyError("missing")


def test_actor_keeps_state_between_calls(shared_cluster):
    c = Counter.remote(10)
    assert actorium.get([c.incr.remote() for _ in range(5)]) == [11, 12, 13, 14, 15]


def test_calls_from_one_caller_run_in_order(shared_cluster):
    c = Counter.remote()
    refs = [c.incr.remote(1) for _ in range(200)]
    assert actorium.get(refs) == list(range(1, 201))


def test_each_actor_has_its_own_process(shared_cluster):
    a, b = Counter.remote(), Counter.remote()
    assert actorium.get(a.pid.remote()) != actorium.get(b.pid.remote())


def test_method_exception_leaves_actor_alive(shared_cluster):
    c = Counter.remote()
    with pytest.raises(KeyError):
        actorium.get(c.fail.remote())
    assert actorium.get(c.incr.remote()) == 1


def test_missing_method_fails_at_call_site(shared_cluster):
    c = Counter.remote()
    with pytest.raises(AttributeError, match="incr"):
        c.does_not_exist.remote()


def test_named_actor_is_found_by_name(shared_cluster):
    c = Counter.options(name="named-counter").remote()
    actorium.get(c.incr.remote())
    same = actorium.get_actor("named-counter")
    assert actorium.get(same.incr.remote()) == 2


def test_get_actor_of_unknown_name_raises_value_error(shared_cluster):
    with pytest.raises(ValueError, match="nobody"):
        actorium.get_actor("nobody")


def test_duplicate_name_is_refused(shared_cluster):
    first = Counter.options(name="dup").remote()  # held: without a handle it would exit
    with pytest.raises(Exception, match="already taken"):
        Counter.options(name="dup").remote()
    assert actorium.get(first.incr.remote(), timeout=30) == 1


def test_get_if_exists_returns_the_existing_actor(shared_cluster):
    a = Counter.options(name="gie", get_if_exists=True).remote()
    actorium.get(a.incr.remote())
    b = Counter.options(name="gie", get_if_exists=True).remote()
    assert actorium.get(b.incr.remote()) == 2


def test_constructor_failure_makes_calls_raise_actor_died(shared_cluster):
    @actorium.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("cannot start")

        def ping(self):
            return 1

    b = Broken.remote()
    with pytest.raises(ActorDiedError, match="cannot start"):
        actorium.get(b.ping.remote(), timeout=30)


def test_killed_actor_raises_actor_died(shared_cluster):
    c = Counter.remote()
    actorium.get(c.incr.remote())
    actorium.kill(c)
    with pytest.raises(ActorDiedError):
        actorium.get(c.incr.remote(), timeout=30)


def test_actor_with_max_restarts_comes_back_in_a_new_process(shared_cluster):
    c = Counter.options(max_restarts=1).remote()
    pid = actorium.get(c.pid.remote())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            new_pid = actorium.get(c.pid.remote(), timeout=30)
            break
        except ActorDiedError:
            assert time.monotonic() < deadline
    assert new_pid != pid


def test_actor_without_restarts_dies_with_its_process(shared_cluster):
    c = Counter.remote()
    os.kill(actorium.get(c.pid.remote()), signal.SIGKILL)
    with pytest.raises(ActorDiedError):
        actorium.get(c.incr.remote(), timeout=30)


def test_kill_with_restart_allowed_restarts_the_actor(shared_cluster):
    c = Counter.options(max_restarts=2).remote()
    pid = actorium.get(c.pid.remote())
    actorium.kill(c, no_restart=False)
    # kill() returns before the old process is gone, so a first call may still reach it.
    deadline = time.monotonic() + 30
    new_pid = pid
    while new_pid == pid:
        assert time.monotonic() < deadline
        try:
            new_pid = actorium.get(c.pid.remote(), timeout=30)
        except ActorDiedError:
            pass
    assert actorium.get(c.incr.remote()) == 1  # a fresh instance


def test_async_actor_runs_calls_concurrently(shared_cluster):
    @actorium.remote
    class Gate:
        def __init__(self):
            self.event = None

        async def wait(self):
            if self.event is None:
                self.event = asyncio.Event()
            await asyncio.wait_for(self.event.wait(), 20)
            return "released"

        async def release(self):
            if self.event is None:
                self.event = asyncio.Event()
            self.event.set()
            return "ok"

    g = Gate.remote()
    waiting = g.wait.remote()
    assert actorium.get(g.release.remote(), timeout=20) == "ok"
    assert actorium.get(waiting, timeout=20) == "released"


def test_threaded_actor_runs_calls_in_parallel_threads(shared_cluster):
    @actorium.remote(max_concurrency=2)
    class Pair:
        def __init__(self):
            self.barrier = threading.Barrier(2, timeout=20)

        def meet(self):
            self.barrier.wait()
            return threading.get_ident()

    p = Pair.remote()
    idents = actorium.get([p.meet.remote(), p.meet.remote()], timeout=30)
    assert len(set(idents)) == 2


def test_actor_handles_can_be_passed_to_tasks(shared_cluster):
    c = Counter.remote()

    @actorium.remote
    def bump(handle):
        return actorium.get(handle.incr.remote())

    assert sorted(actorium.get([bump.remote(c) for _ in range(3)])) == [1, 2, 3]


def test_method_num_returns_decorator(shared_cluster):
    @actorium.remote
    class Splitter:
        @actorium.method(num_returns=2)
        def split(self, x):
            return x, -x

    s = Splitter.remote()
    a, b = s.split.remote(3)
    assert actorium.get([a, b]) == [3, -3]


def test_actor_method_can_await_a_ref(shared_cluster):
    @actorium.remote
    def seven():
        return 7

    @actorium.remote
    class AsyncUser:
        async def use(self):
            return await seven.remote() * 6

    assert actorium.get(AsyncUser.remote().use.remote()) == 42
