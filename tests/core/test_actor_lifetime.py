"""A non-detached actor lives while any handle to it exists anywhere (the driver, tasks,
other actors) and exits, freeing its name, when the last is gone, as in Ray."""
from __future__ import annotations

import gc
import time

import actorium


@actorium.remote
class Target:
    def ping(self):
        return "pong"


@actorium.remote
class Keeper:
    """Holds a handle it was given, until told to drop it. (Given in a call, not to the
    constructor: a constructor's arguments stay held for restarts while the actor lives.)"""

    def __init__(self):
        self.handle = None

    def hold(self, handle):
        self.handle = handle
        return True

    def call_through(self):
        return actorium.get(self.handle.ping.remote(), timeout=30)

    def drop(self):
        self.handle = None
        import gc
        gc.collect()
        return True


@actorium.remote
def call_after(handle, delay):
    time.sleep(delay)
    return actorium.get(handle.ping.remote(), timeout=30)


def _gone(name: str, timeout: float = 30) -> bool:
    """True once get_actor(name) raises ValueError (the actor exited, its name freed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            actorium.get_actor(name)
        except ValueError:
            return True
        gc.collect()
        time.sleep(0.1)
    return False


def _alive(name: str) -> bool:
    return actorium.get(actorium.get_actor(name).ping.remote(), timeout=30) == "pong"


def test_named_actor_exits_and_frees_its_name_when_its_last_handle_is_gone(cluster):
    handle = Target.options(name="short-lived").remote()
    assert actorium.get(handle.ping.remote(), timeout=60) == "pong"
    del handle
    assert _gone("short-lived")


def test_a_freed_name_can_be_taken_by_a_new_actor(cluster):
    handle = Target.options(name="reused").remote()
    actorium.get(handle.ping.remote(), timeout=60)
    del handle
    assert _gone("reused")
    again = Target.options(name="reused").remote()
    assert actorium.get(again.ping.remote(), timeout=60) == "pong"


def test_a_handle_held_by_another_actor_keeps_the_actor_alive(cluster):
    handle = Target.options(name="held").remote()
    keeper = Keeper.remote()
    actorium.get(keeper.hold.remote(handle), timeout=60)
    assert actorium.get(keeper.call_through.remote(), timeout=60) == "pong"
    del handle
    gc.collect()
    time.sleep(1.0)  # long enough for a premature release to have reached the gcs
    assert actorium.get(keeper.call_through.remote(), timeout=60) == "pong"
    assert _alive("held")
    assert actorium.get(keeper.drop.remote(), timeout=60)
    assert _gone("held")


def test_a_handle_passed_to_a_task_keeps_the_actor_alive_until_the_task_is_done(cluster):
    handle = Target.options(name="task-held").remote()
    actorium.get(handle.ping.remote(), timeout=60)
    ref = call_after.remote(handle, 1.5)
    del handle
    gc.collect()
    assert actorium.get(ref, timeout=60) == "pong"
    assert _gone("task-held")


def test_a_handle_from_get_actor_counts_as_a_handle(cluster):
    handle = Target.options(name="looked-up").remote()
    actorium.get(handle.ping.remote(), timeout=60)
    keeper = Keeper.remote()
    # The keeper looks the actor up by name itself, then the driver lets go.
    actorium.get(keeper.__ray_call__.remote(
        lambda self: setattr(self, "handle", actorium.get_actor("looked-up"))), timeout=60)
    del handle
    gc.collect()
    time.sleep(1.0)
    assert actorium.get(keeper.call_through.remote(), timeout=60) == "pong"
    actorium.get(keeper.drop.remote(), timeout=60)
    assert _gone("looked-up")


def test_a_detached_actor_outlives_its_handles(cluster):
    handle = Target.options(name="detached-one", lifetime="detached").remote()
    actorium.get(handle.ping.remote(), timeout=60)
    del handle
    gc.collect()
    time.sleep(1.0)
    assert _alive("detached-one")
    actorium.kill(actorium.get_actor("detached-one"))


def test_an_unnamed_actor_with_a_live_handle_keeps_running(cluster):
    handle = Target.remote()
    copy = handle
    del handle
    gc.collect()
    assert actorium.get(copy.ping.remote(), timeout=60) == "pong"
