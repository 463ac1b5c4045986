"""``actorium.cancel`` then ``get`` always ends, whatever state the task was in.

Ray's rules: a pending task is removed and never runs; a running task gets
KeyboardInterrupt (``force=True`` kills its worker); ``get`` then raises
TaskCancelledError; a finished task is left alone; ``recursive`` reaches the tasks it
submitted. Actor calls: pending ones are cancelled; a running call of a sync actor is not
interrupted; a running call of an async actor is cancelled as an asyncio task.
"""
from __future__ import annotations

import asyncio
import random
import time

import pytest

import actorium
from actorium.exceptions import TaskCancelledError


@actorium.remote
def sleeper(seconds):
    time.sleep(seconds)
    return "finished"


@actorium.remote
def mark_then_sleep(path, seconds):
    open(path, "w").close()
    time.sleep(seconds)
    return "finished"


def _wait_for(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_cancel_of_a_sleeping_task_ends_get_at_once(shared_cluster, tmp_path):
    started = tmp_path / "started"
    ref = mark_then_sleep.remote(str(started), 60)
    _wait_for(started)
    t0 = time.monotonic()
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=10)
    assert time.monotonic() - t0 < 5


def test_a_running_task_sees_keyboard_interrupt(shared_cluster, tmp_path):
    started, interrupted = tmp_path / "started", tmp_path / "interrupted"

    @actorium.remote
    def note_interrupt():
        open(started, "w").close()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            open(interrupted, "w").close()
            raise

    ref = note_interrupt.remote()
    _wait_for(started)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=10)
    assert interrupted.exists()


def test_a_cancelled_task_frees_its_cpu_for_the_next(shared_cluster, tmp_path):
    # Two CPUs, two long tasks cancelled: new work runs at once instead of waiting 60 s.
    marks = [tmp_path / f"m{i}" for i in range(2)]
    refs = [mark_then_sleep.remote(str(m), 60) for m in marks]
    for m in marks:
        _wait_for(m)
    for r in refs:
        actorium.cancel(r)
    assert actorium.get([sleeper.remote(0) for _ in range(4)], timeout=20) == ["finished"] * 4


def test_cancel_while_its_argument_is_pending_never_runs_it(shared_cluster, tmp_path):
    ran = tmp_path / "ran"

    @actorium.remote
    def touch(_):
        open(ran, "w").close()

    dep = sleeper.remote(2)
    ref = touch.remote(dep)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=1)  # ends long before the argument is ready
    actorium.get(dep, timeout=30)
    assert not ran.exists()


def test_cancel_of_a_finished_task_is_a_no_op(shared_cluster):
    ref = sleeper.remote(0)
    assert actorium.get(ref, timeout=30) == "finished"
    actorium.cancel(ref)
    assert actorium.get(ref, timeout=5) == "finished"


def test_cancelled_task_is_not_retried(shared_cluster, tmp_path):
    runs = tmp_path / "runs"

    @actorium.remote(max_retries=3, retry_exceptions=True)
    def count_runs():
        with open(runs, "a") as f:
            f.write("x")
        time.sleep(60)

    ref = count_runs.remote()
    while not runs.exists():
        time.sleep(0.01)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=10)
    assert runs.read_text() == "x"


def test_recursive_cancel_reaches_the_child_tasks(shared_cluster, tmp_path):
    child_started = tmp_path / "child"

    @actorium.remote
    def parent(path):
        child = mark_then_sleep.remote(path, 60)
        return actorium.get(child)

    ref = parent.remote(str(child_started))
    _wait_for(child_started)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=10)
    # the child's worker is free again: two quick tasks run on the two CPUs
    assert actorium.get([sleeper.remote(0), sleeper.remote(0)], timeout=10) == ["finished"] * 2


def test_cancel_in_any_state_ends_get_repeated_100_times_under_load(shared_cluster):
    """Cancel at random moments (queued at the owner, waiting for a lease, pushed,
    running, finished) while other work keeps both CPUs busy: every get ends."""
    rng = random.Random(7)
    background = [sleeper.remote(0.05) for _ in range(20)]
    outcomes = {"cancelled": 0, "finished": 0}
    for i in range(100):
        ref = sleeper.remote(rng.choice([0, 0.01, 30]))
        time.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02]))
        actorium.cancel(ref)
        try:
            outcomes[actorium.get(ref, timeout=10)] += 1
        except TaskCancelledError:
            outcomes["cancelled"] += 1
        if i % 10 == 0:
            background += [sleeper.remote(0.05) for _ in range(5)]
    assert sum(outcomes.values()) == 100 and outcomes["cancelled"] > 0
    actorium.get(background, timeout=60)


def test_pending_actor_call_is_cancelled_and_the_actor_goes_on(shared_cluster):
    @actorium.remote
    class Slow:
        def __init__(self):
            self.calls = []

        def work(self, i, seconds=0):
            time.sleep(seconds)
            self.calls.append(i)
            return i

        def calls_seen(self):
            return self.calls

    a = Slow.remote()
    first = a.work.remote(0, 1)
    second = a.work.remote(1)
    third = a.work.remote(2)
    actorium.cancel(second)
    with pytest.raises(TaskCancelledError):
        actorium.get(second, timeout=10)
    assert actorium.get([first, third], timeout=30) == [0, 2]
    assert actorium.get(a.calls_seen.remote(), timeout=10) == [0, 2]


def test_running_call_of_a_sync_actor_is_not_interrupted(shared_cluster, tmp_path):
    started = tmp_path / "started"

    @actorium.remote
    class Stateful:
        def step(self, path):
            open(path, "w").close()
            time.sleep(0.5)
            return "kept"

    a = Stateful.remote()
    ref = a.step.remote(str(started))
    _wait_for(started)
    actorium.cancel(ref)
    assert actorium.get(ref, timeout=10) == "kept"


def test_running_call_of_an_async_actor_is_cancelled(shared_cluster):
    @actorium.remote
    class AsyncAgent:
        def __init__(self):
            self.saw_cancel = False

        async def think(self):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.saw_cancel = True
                raise

        async def saw(self):
            return self.saw_cancel

    a = AsyncAgent.remote()
    ref = a.think.remote()
    time.sleep(0.3)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=10)
    assert actorium.get(a.saw.remote(), timeout=10) is True


def test_force_cancel_of_an_actor_call_is_refused(shared_cluster):
    @actorium.remote
    class A:
        def f(self):
            time.sleep(0.2)

    a = A.remote()
    ref = a.f.remote()
    with pytest.raises(ValueError, match="force"):
        actorium.cancel(ref, force=True)
    actorium.get(ref, timeout=10)


def test_a_sync_actor_call_can_poll_is_canceled_and_stop_early(shared_cluster, tmp_path):
    started = tmp_path / "started"

    @actorium.remote
    class Polite:
        def long_job(self, path):
            open(path, "w").close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if actorium.get_runtime_context().is_canceled():
                    return "stopped early"
                time.sleep(0.01)
            return "ran to the end"

    a = Polite.remote()
    ref = a.long_job.remote(str(started))
    _wait_for(started)
    actorium.cancel(ref)
    assert actorium.get(ref, timeout=10) == "stopped early"


def test_a_cancelled_stream_of_a_sync_actor_stops_at_its_next_yield(shared_cluster):
    @actorium.remote
    class Producer:
        def __init__(self):
            self.made = 0
            self.closed = False

        def endless(self):
            try:
                while True:
                    self.made += 1
                    yield self.made
                    time.sleep(0.005)
            finally:
                self.closed = True

        def state(self):
            return self.made, self.closed

    p = Producer.remote()
    gen = p.endless.remote()
    assert [actorium.get(next(gen), timeout=10) for _ in range(3)] == [1, 2, 3]
    actorium.cancel(gen)
    # The actor takes the next call only once the stream has stopped.
    made, closed = actorium.get(p.state.remote(), timeout=10)
    assert closed and made >= 3
    assert actorium.get(p.state.remote(), timeout=10) == (made, True)
