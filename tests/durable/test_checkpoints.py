"""checkpoint=: actor state survives kill -9 of its process and is restored before any
new call; a call that completed before the crash is answered once, from its cached reply."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle
import pytest

import actorium
from actorium.exceptions import CheckpointError

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def kill(actor) -> None:
    """SIGKILL the actor's process and wait until it serves calls again."""
    os.kill(actorium.get(actor.pid.remote(), timeout=30), signal.SIGKILL)


@actorium.remote(max_restarts=-1, checkpoint="auto")
class Counter:
    def __init__(self):
        self.n = 0
        self.history = []

    def incr(self, tag):
        self.n += 1
        self.history.append(tag)
        return self.n

    def state(self):
        return self.n, self.history

    def pid(self):
        return os.getpid()


def test_auto_checkpoint_restores_state_after_kill(shared_cluster):
    c = Counter.remote()
    assert [actorium.get(c.incr.remote(t), timeout=30) for t in "abc"] == [1, 2, 3]
    kill(c)
    assert actorium.get(c.state.remote(), timeout=60) == (3, ["a", "b", "c"])
    assert actorium.get(c.incr.remote("d"), timeout=30) == 4


def test_plain_actor_without_checkpoint_restarts_from_its_constructor(shared_cluster):
    c = Counter.options(checkpoint=None, max_task_retries=-1).remote()
    actorium.get(c.incr.remote("a"), timeout=30)
    kill(c)
    assert actorium.get(c.state.remote(), timeout=60) == (0, [])


def test_custom_checkpoint_hooks_are_used(shared_cluster):
    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class Hooked:
        def __init__(self):
            self.items = []
            self.restored_from = None

        def add(self, x):
            self.items.append(x)

        def __actorium_checkpoint__(self):
            return {"items": list(self.items)}

        def __actorium_restore__(self, state):
            self.items = state["items"]
            self.restored_from = "hook"

        def get(self):
            return self.items, self.restored_from

        def pid(self):
            return os.getpid()

    h = Hooked.remote()
    actorium.get([h.add.remote(1), h.add.remote(2)], timeout=30)
    kill(h)
    assert actorium.get(h.get.remote(), timeout=60) == ([1, 2], "hook")


def test_every_calls_policy_checkpoints_only_every_nth_call(shared_cluster):
    c = Counter.options(checkpoint={"every_calls": 2}).remote()
    pid = actorium.get(c.pid.remote(), timeout=30)  # call 1
    for t in "ab":                                   # calls 2 (checkpointed) and 3
        actorium.get(c.incr.remote(t), timeout=30)
    os.kill(pid, signal.SIGKILL)
    assert actorium.get(c.state.remote(), timeout=60) == (1, ["a"])


def test_unpicklable_state_fails_the_call_with_checkpoint_error(shared_cluster):
    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class Locked:
        def __init__(self):
            import threading
            self.lock = threading.Lock()

        def touch(self):
            return "touched"

    with pytest.raises(CheckpointError, match="could not checkpoint the state of Locked"):
        actorium.get(Locked.remote().touch.remote(), timeout=30)


def test_call_completed_before_the_crash_is_answered_from_its_cached_reply(
        shared_cluster, tmp_path):
    marker = str(tmp_path / "m")

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class Once:
        def __init__(self):
            self.runs = 0

        def arm_and_run(self):
            self.runs += 1
            from actorium.durable import writer

            def crash():
                if not os.path.exists(marker):
                    open(marker, "w").close()
                    os.kill(os.getpid(), signal.SIGKILL)
            writer.after_checkpoint = crash
            return self.runs

        def runs_so_far(self):
            return self.runs

    o = Once.remote()
    # Its own checkpoint (runs == 1) commits, then the process dies before replying. A
    # re-run would restore runs == 1 and return 2; the cached reply returns 1.
    assert actorium.get(o.arm_and_run.remote(), timeout=60) == 1
    assert os.path.exists(marker)
    assert actorium.get(o.runs_so_far.remote(), timeout=30) == 1


@pytest.mark.parametrize("bad", ["sometimes", {"every": 3}, {"every_calls": -1},
                                 {"every_calls": 0}, {"every_seconds": "1"}])
def test_bad_checkpoint_option_is_rejected_with_the_valid_forms(bad):
    with pytest.raises(ValueError, match="checkpoint"):
        Counter.options(checkpoint=bad)


def test_checkpoint_on_an_async_actor_is_rejected(shared_cluster):
    @actorium.remote(checkpoint="auto")
    class Async:
        async def f(self):
            return 1

    with pytest.raises(ValueError, match="synchronous actor"):
        Async.remote()


def test_a_restore_hook_that_raises_makes_the_actor_dead_with_the_reason(shared_cluster):
    from actorium.exceptions import ActorDiedError

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class Fussy:
        def __init__(self):
            self.n = 0

        def bump(self):
            self.n += 1
            return os.getpid()

        def __actorium_restore__(self, state):
            raise ValueError("this state is from an older version")

    f = Fussy.remote()
    os.kill(actorium.get(f.bump.remote(), timeout=30), signal.SIGKILL)
    with pytest.raises(ActorDiedError, match="could not restore the checkpoint of Fussy"):
        actorium.get(f.bump.remote(), timeout=60)
