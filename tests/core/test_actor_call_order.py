"""One caller's calls to a sequential actor run in submission order, even while their
ref arguments are pending and become ready in another order (Ray's guarantee); async
and threaded actors take each call as soon as its arguments are ready."""
from __future__ import annotations

import os
import random
import time

import pytest

import actorium
from actorium.exceptions import TaskCancelledError


@actorium.remote
def ready_after(value, seconds):
    time.sleep(seconds)
    return value


@actorium.remote
def fail_after(seconds):
    time.sleep(seconds)
    raise ValueError("this argument failed")


@actorium.remote
class Recorder:
    def __init__(self):
        self.seen = []

    def add(self, i, _value=None):
        self.seen.append(i)
        return i

    def seen_calls(self):
        return self.seen


def test_calls_with_pending_arguments_of_random_readiness_run_in_order(shared_cluster):
    rng = random.Random(12)
    a = Recorder.remote()
    refs = [a.add.remote(i, ready_after.remote(i, rng.choice([0, 0, 0.01, 0.03])))
            for i in range(100)]
    assert actorium.get(refs, timeout=60) == list(range(100))
    assert actorium.get(a.seen_calls.remote(), timeout=30) == list(range(100))


def test_a_call_without_arguments_waits_behind_an_earlier_pending_one(shared_cluster):
    a = Recorder.remote()
    slow = a.add.remote(0, ready_after.remote("x", 0.3))
    fast = a.add.remote(1)
    assert actorium.get([slow, fast], timeout=30) == [0, 1]
    assert actorium.get(a.seen_calls.remote(), timeout=30) == [0, 1]


def test_a_failed_argument_fails_its_call_and_releases_the_next(shared_cluster):
    a = Recorder.remote()
    broken = a.add.remote(0, fail_after.remote(0.1))
    after = a.add.remote(1, ready_after.remote("y", 0))
    with pytest.raises(ValueError):
        actorium.get(broken, timeout=30)
    assert actorium.get(after, timeout=30) == 1
    assert actorium.get(a.seen_calls.remote(), timeout=30) == [1]


def test_cancelling_a_call_whose_argument_is_pending_releases_the_next(shared_cluster):
    a = Recorder.remote()
    slow_argument = ready_after.remote("z", 30)
    blocked = a.add.remote(0, slow_argument)
    after = a.add.remote(1)
    actorium.cancel(blocked)
    with pytest.raises(TaskCancelledError):
        actorium.get(blocked, timeout=10)
    assert actorium.get(after, timeout=10) == 1
    actorium.cancel(slow_argument)  # give its CPU back to the next tests


def test_calls_keep_their_order_across_an_actor_restart(shared_cluster, tmp_path):
    crash_marker = tmp_path / "crashed"

    @actorium.remote(max_restarts=1, max_task_retries=-1)
    class Journal:
        def __init__(self, log_path):
            self.log_path = log_path

        def add(self, i, _value=None):
            if i == 20 and not crash_marker.exists():
                crash_marker.write_text("once")
                os._exit(1)
            with open(self.log_path, "a") as f:
                f.write(f"{i}\n")
            return i

    log = tmp_path / "log"
    rng = random.Random(5)
    a = Journal.remote(str(log))
    refs = [a.add.remote(i, ready_after.remote(i, rng.choice([0, 0.01, 0.02])))
            for i in range(50)]
    assert actorium.get(refs, timeout=120) == list(range(50))
    lines = [int(x) for x in log.read_text().split()]
    # calls in flight when the process died ran again; the order never goes backwards
    # except for that one re-run, and every call is there
    assert sorted(set(lines)) == list(range(50))
    restart_at = next((k for k in range(1, len(lines)) if lines[k] < lines[k - 1]), len(lines))
    assert lines[:restart_at] == sorted(lines[:restart_at])
    assert lines[restart_at:] == sorted(lines[restart_at:])


def test_an_async_actor_is_not_held_back_by_a_pending_argument(shared_cluster):
    @actorium.remote
    class AsyncRecorder:
        def __init__(self):
            self.seen = []

        async def add(self, i, _value=None):
            self.seen.append(i)
            return i

        async def seen_calls(self):
            return self.seen

    a = AsyncRecorder.remote()
    slow = a.add.remote(0, ready_after.remote("x", 2))
    fast = a.add.remote(1)
    assert actorium.get(fast, timeout=1.5) == 1  # did not wait for the slow argument
    actorium.get(slow, timeout=30)
    assert actorium.get(a.seen_calls.remote(), timeout=30) == [1, 0]
