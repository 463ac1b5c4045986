"""``isolation="sandbox"`` on functions and actors, end to end through the public API.

A real single-node cluster inside run_contained.sh (marker ``jail``): the function or
actor runs in a jail of the node's sandbox zygote; the caller sees values, builtin
exceptions, and ``SandboxViolation`` naming the limit hit. A secret in the driver's
environment (inherited by the node and its workers) must not be visible inside.
"""
import os
import pickle
import time

import numpy as np
import pytest

import actorium
from isolation_helpers import sandbox_cgroups, sandbox_processes, wait_sandboxes_gone
from actorium.exceptions import ActorDiedError, SandboxViolation, TaskCancelledError

pytestmark = pytest.mark.jail

from conftest import SECRET  # noqa: E402  (the cluster fixture puts it in the driver's env)


@actorium.remote(isolation="sandbox")
def add(x, y=1):
    return {"sum": x + y}


@actorium.remote(isolation="sandbox")
def environment_and_files():
    import glob
    return {"env": dict(os.environ), "shm": glob.glob("/dev/shm/*"),
            "sessions": glob.glob("/tmp/actorium*"), "uid": os.getuid()}


class PythonREPL:
    """A stateful tool: the kind of thing an agent runs model-written code in."""

    def __init__(self, preset=None):
        self.env = dict(preset or {})

    def exec(self, code):
        import ast
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<repl>", "exec"), self.env)
        if last is not None:
            return eval(compile(ast.Expression(last.value), "<repl>", "eval"), self.env)
        return None

    def pid(self):
        return os.getpid()


def kill_and_wait(handle) -> None:
    """kill() is asynchronous: wait until the actor's jail is gone (bounded)."""
    actorium.kill(handle)
    wait_sandboxes_gone()


def test_sandboxed_function_returns_its_value(cluster):
    assert actorium.get(add.remote(41), timeout=30) == {"sum": 42}


def test_sandboxed_function_takes_object_refs_as_arguments(cluster):
    ref = actorium.put(10)
    assert actorium.get(add.remote(ref, y=5), timeout=30) == {"sum": 15}


def test_sandboxed_function_returns_numpy_arrays(cluster):
    @actorium.remote(isolation="sandbox")
    def squares(n):
        import numpy
        return numpy.arange(n, dtype=numpy.int64) ** 2
    out = actorium.get(squares.remote(1000), timeout=30)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    assert out[999] == 999 ** 2


def test_builtin_exception_in_sandbox_is_catchable_by_its_type(cluster):
    @actorium.remote(isolation="sandbox")
    def fails():
        raise KeyError("missing-key")
    with pytest.raises(KeyError) as info:
        actorium.get(fails.remote(), timeout=30)
    assert "missing-key" in str(info.value)


def test_custom_exception_class_is_not_rebuilt_from_sandbox_data(cluster):
    class Custom(Exception):
        pass

    @actorium.remote(isolation="sandbox")
    def fails():
        raise Custom("custom-message")
    with pytest.raises(actorium.exceptions.TaskError) as info:
        actorium.get(fails.remote(), timeout=30)
    assert not isinstance(info.value, Custom)
    assert "custom-message" in str(info.value)


def test_value_the_codec_cannot_carry_is_a_clear_error(cluster):
    @actorium.remote(isolation="sandbox")
    def returns_object():
        return object()
    with pytest.raises(TypeError, match="cannot leave the sandbox"):
        actorium.get(returns_object.remote(), timeout=30)


def test_pickle_payload_returned_as_bytes_stays_bytes(cluster, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Evil())

    @actorium.remote(isolation="sandbox")
    def disguised(p):
        return p
    assert actorium.get(disguised.remote(payload), timeout=30) == payload
    assert not marker.exists()


def test_sandboxed_function_sees_no_secrets_and_no_cluster(cluster):
    seen = actorium.get(environment_and_files.remote(), timeout=30)
    assert SECRET not in repr(seen["env"])
    assert "ACTORIUM_TEST_SECRET" not in seen["env"]
    assert seen["shm"] == [] and seen["sessions"] == []
    assert seen["uid"] == 1000


def test_memory_limit_raises_sandbox_violation(cluster):
    @actorium.remote(isolation="sandbox", sandbox=actorium.SandboxPolicy(memory="64MiB"))
    def hog():
        return len(bytearray(512 << 20))
    with pytest.raises(SandboxViolation, match="memory"):
        actorium.get(hog.remote(), timeout=30)


def test_wall_time_limit_raises_sandbox_violation(cluster):
    @actorium.remote(isolation="sandbox", sandbox=actorium.SandboxPolicy(wall_seconds=1))
    def sleeper():
        import time
        time.sleep(60)
    start = time.monotonic()
    with pytest.raises(SandboxViolation, match="wall_time"):
        actorium.get(sleeper.remote(), timeout=30)
    assert time.monotonic() - start < 10


def test_cpu_limit_raises_sandbox_violation(cluster):
    @actorium.remote(isolation="sandbox", sandbox=actorium.SandboxPolicy(cpu_seconds=1))
    def spin():
        while True:
            pass
    with pytest.raises(SandboxViolation, match="cpu_time"):
        actorium.get(spin.remote(), timeout=30)


def test_cancel_kills_the_sandboxed_call(cluster):
    @actorium.remote(isolation="sandbox", sandbox=actorium.SandboxPolicy(wall_seconds=60))
    def forever():
        import time
        time.sleep(600)
    ref = forever.remote()
    time.sleep(0.5)  # let it reach the jail (a cancel before that is also fine)
    actorium.cancel(ref)
    with pytest.raises((TaskCancelledError, actorium.exceptions.TaskError)):
        actorium.get(ref, timeout=30)


def test_sandboxed_function_can_be_started_from_inside_an_actor(cluster):
    @actorium.remote
    class Agent:
        def run_tool(self, x):
            return actorium.get(add.remote(x), timeout=30)
    agent = Agent.remote()
    assert actorium.get(agent.run_tool.remote(1), timeout=60) == {"sum": 2}


def test_sandboxed_actor_keeps_state_between_calls(cluster):
    Tool = actorium.remote(isolation="sandbox")(PythonREPL)
    repl = Tool.remote()
    repl.exec.remote("x = 1")
    assert actorium.get(repl.exec.remote("x + 1"), timeout=30) == 2
    kill_and_wait(repl)


def test_sandboxed_actor_constructor_arguments_reach_the_jail(cluster):
    Tool = actorium.remote(isolation="sandbox")(PythonREPL)
    repl = Tool.remote({"y": 5})
    assert actorium.get(repl.exec.remote("y * 2"), timeout=30) == 10
    kill_and_wait(repl)


def test_sandboxed_actor_method_error_keeps_the_actor(cluster):
    Tool = actorium.remote(isolation="sandbox")(PythonREPL)
    repl = Tool.remote()
    with pytest.raises(ZeroDivisionError):
        actorium.get(repl.exec.remote("1 / 0"), timeout=30)
    assert actorium.get(repl.exec.remote("3"), timeout=30) == 3
    kill_and_wait(repl)


def test_sandboxed_actor_runs_in_a_jail_not_in_its_worker(cluster):
    Tool = actorium.remote(isolation="sandbox")(PythonREPL)
    repl = Tool.remote()
    assert actorium.get(repl.pid.remote(), timeout=30) == 1  # pid 1 of its own pid namespace
    assert "ACTORIUM_TEST_SECRET" not in actorium.get(
        repl.exec.remote("import os; dict(os.environ)"), timeout=30)
    kill_and_wait(repl)


def test_sandboxed_actor_violation_raises_and_kills_the_actor(cluster):
    Tool = actorium.remote(isolation="sandbox",
                           sandbox=actorium.SandboxPolicy(memory="64MiB"))(PythonREPL)
    repl = Tool.remote()
    assert actorium.get(repl.exec.remote("1"), timeout=30) == 1
    with pytest.raises(SandboxViolation, match="memory"):
        actorium.get(repl.exec.remote("b = bytearray(512 << 20)"), timeout=30)
    with pytest.raises(ActorDiedError):
        actorium.get(repl.exec.remote("1"), timeout=30)
    kill_and_wait(repl)


def test_sandboxed_actor_constructor_error_is_reported(cluster):
    class Broken:
        def __init__(self):
            raise RuntimeError("cannot build")

        def f(self):
            return 1
    handle = actorium.remote(isolation="sandbox")(Broken).remote()
    with pytest.raises(ActorDiedError, match="cannot build"):
        actorium.get(handle.f.remote(), timeout=30)


def test_killing_a_sandboxed_actor_ends_its_jail(cluster):
    Tool = actorium.remote(isolation="sandbox")(PythonREPL)
    repl = Tool.remote()
    assert actorium.get(repl.exec.remote("1"), timeout=30) == 1
    assert sandbox_processes() or sandbox_cgroups()  # the jail is there to be ended
    kill_and_wait(repl)
    assert sandbox_processes() == [] and sandbox_cgroups() == []


def test_streaming_sandboxed_function_is_refused(cluster):
    @actorium.remote(isolation="sandbox", num_returns="streaming")
    def gen():
        yield 1
    with pytest.raises(TypeError, match="cannot stream"):
        gen.remote()
