"""actorium.sandbox.run end to end: driver -> raylet -> sandbox zygote -> jail -> back.

Runs a real single-node cluster inside run_contained.sh (marker ``jail``). The secret is
put into the driver's environment before ``actorium.init()``, so the node process (and
everything it forks) inherits it; none of it may be visible from inside a sandbox.
"""
import os
import pickle
import time

import psutil
import pytest

import actorium

pytestmark = pytest.mark.jail

from conftest import SECRET  # noqa: E402  (the cluster fixture puts it in the driver's env)


def _node_processes():
    me = os.getpid()
    return [p for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["pid"] != me and any("actorium" in (a or "") for a in (p.info["cmdline"] or []))]


def test_stdout_and_value(cluster):
    r = actorium.get(actorium.sandbox.run("print(sum(range(10)))\n{'x': [1, 2.5, 'three']}",
                                          timeout=5))
    assert isinstance(r, actorium.sandbox.SandboxResult)
    assert r.stdout == "45\n"
    assert r.exit_code == 0 and r.violation is None
    assert r.value == {"x": [1, 2.5, "three"]}


def test_inputs_and_policy(cluster):
    pol = actorium.SandboxPolicy(wall_seconds=10, files={"/data/in.txt": b"hello"})
    r = actorium.get(actorium.sandbox.run("open('/data/in.txt').read() + str(n * 2)",
                                          policy=pol, inputs={"n": 21}))
    assert r.value == "hello42", r.stderr


def test_raising_snippet_is_data(cluster):
    r = actorium.get(actorium.sandbox.run("def f():\n    raise ValueError('boom')\nf()",
                                          timeout=5))
    assert r.exit_code != 0
    assert "ValueError: boom" in r.stderr and "Traceback" in r.stderr
    assert r.value is None


def test_wall_time_overrun(cluster):
    start = time.monotonic()
    r = actorium.get(actorium.sandbox.run("import time\ntime.sleep(60)", timeout=1),
                     timeout=30)
    assert r.violation == "wall_time"
    assert r.exit_code != 0
    assert time.monotonic() - start < 10


def test_driver_secret_not_visible(cluster):
    r = actorium.get(actorium.sandbox.run(
        "import os\n(dict(os.environ), open('/proc/self/environ', 'rb').read(),"
        " open('/proc/1/environ', 'rb').read())", timeout=5))
    assert r.exit_code == 0, r.stderr
    env, self_env, init_env = r.value
    assert "ACTORIUM_TEST_SECRET" not in env
    assert SECRET not in repr(env)
    assert SECRET.encode() not in self_env and SECRET.encode() not in init_env


def test_secret_not_in_sandbox_memory(cluster):
    # Every sandbox is a fork of the node's sandbox zygote, so the zygote's memory is what
    # a sandbox can read: it must hold no trace of the node's (= the user's) environment.
    # The needle is passed in halves and never assembled, so only a leak can match.
    code = """
import ctypes
a, b = inputs['a'].encode(), inputs['b'].encode()
hits = 0
for line in open('/proc/self/maps'):
    parts = line.split()
    if 'r' not in parts[1] or line.rstrip().endswith(('[vvar]', '[vsyscall]', '[vvar_vclock]')):
        continue
    lo, hi = (int(x, 16) for x in parts[0].split('-'))
    data = ctypes.string_at(lo, hi - lo)
    i = data.find(a)
    while i >= 0:
        if data[i + len(a):i + len(a) + len(b)] == b:
            hits += 1
        i = data.find(a, i + 1)
    del data
hits
"""
    half = len(SECRET) // 2
    r = actorium.get(actorium.sandbox.run(
        code, inputs={"a": SECRET[:half], "b": SECRET[half:]},
        policy=actorium.SandboxPolicy(wall_seconds=30, cpu_seconds=20, memory="512MiB")))
    assert r.exit_code == 0, r.stderr
    assert r.value == 0


def test_malicious_pickle_comes_back_as_bytes(cluster, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(str(marker)))
    r = actorium.get(actorium.sandbox.run("bytes(inputs['p'])", inputs={"p": payload},
                                          timeout=5))
    assert r.exit_code == 0, r.stderr
    assert r.value == payload and isinstance(r.value, bytes)
    assert not marker.exists()


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_unencodable_value_is_a_clear_error(cluster):
    r = actorium.get(actorium.sandbox.run("object()", timeout=5))
    assert r.exit_code != 0
    assert "cannot be returned" in r.stderr


def test_many_concurrent(cluster):
    refs = [actorium.sandbox.run(f"print({i})\n{i} * {i}", timeout=30) for i in range(20)]
    results = actorium.get(refs, timeout=120)
    assert [r.value for r in results] == [i * i for i in range(20)]
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]


def test_cluster_keeps_working(cluster):
    @actorium.remote
    def add(a, b):
        return a + b
    assert actorium.get(add.remote(1, 2), timeout=60) == 3
    r = actorium.get(actorium.sandbox.run("7 * 6", timeout=5))
    assert r.value == 42


def test_sandbox_from_inside_a_task(cluster):
    @actorium.remote
    def nested():
        import actorium as a
        return a.get(a.sandbox.run("3 + 4", timeout=5)).value
    assert actorium.get(nested.remote(), timeout=60) == 7


def test_repeated_runs_are_served_by_pre_started_jails(cluster):
    policy = actorium.SandboxPolicy(wall_seconds=7)
    first = actorium.get(actorium.sandbox.run("1", policy=policy))
    second = actorium.get(actorium.sandbox.run("2", policy=policy))
    assert first.value == 1 and second.value == 2
    assert second.details.get("warm") is True


def test_pre_started_jail_starts_its_wall_clock_with_the_request(cluster):
    policy = actorium.SandboxPolicy(wall_seconds=1)
    actorium.get(actorium.sandbox.run("0", policy=policy))  # the pool now follows this policy
    time.sleep(1.5)  # longer than wall_seconds: an idle spare must not have used it up
    r = actorium.get(actorium.sandbox.run("import time; time.sleep(0.2); 3", policy=policy))
    assert r.details.get("warm") is True
    assert r.violation is None and r.value == 3


def test_pre_started_jail_sees_nothing_of_earlier_runs(cluster):
    policy = actorium.SandboxPolicy(wall_seconds=8)
    actorium.get(actorium.sandbox.run("open('/tmp/left', 'w').write('x'); X = 5",
                                      policy=policy))
    r = actorium.get(actorium.sandbox.run(
        "import os; (os.path.exists('/tmp/left'), 'X' in globals())", policy=policy))
    assert r.details.get("warm") is True
    assert r.value == (False, False)


def _sandbox_zygotes():
    """The node's sandbox zygote (not its handler children, which share its command)."""
    def is_service(p):
        return "actorium.isolation.service" in " ".join(p.cmdline() or [])
    return [p for p in _node_processes() if is_service(p) and not is_service(p.parent())]


def test_sandbox_zygote_is_restarted_after_it_dies(cluster):
    zygotes = _sandbox_zygotes()
    assert len(zygotes) == 1
    zygotes[0].kill()
    zygotes[0].wait(10)
    r = actorium.get(actorium.sandbox.run("1 + 1", timeout=5), timeout=30)
    assert r.value == 2 and r.exit_code == 0
    restarted = _sandbox_zygotes()
    assert len(restarted) == 1 and restarted[0].pid != zygotes[0].pid


def test_no_process_left_after_shutdown(cluster):
    # runs last in this module (pytest keeps file order): ends the module's cluster,
    # with a sandbox still running, and checks that everything is gone
    assert _node_processes() != []
    pending = actorium.sandbox.run("import time\ntime.sleep(30)", timeout=60)
    time.sleep(0.5)
    actorium.shutdown()
    del pending
    from isolation_helpers import sandbox_cgroups, sandbox_processes

    def _sandbox_processes():
        return sandbox_processes(include_spares=True)

    def _sandbox_cgroups():
        return sandbox_cgroups(include_spares=True)
    deadline = time.monotonic() + 10
    while (_node_processes() or _sandbox_processes() or _sandbox_cgroups()) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _node_processes() == []
    assert _sandbox_processes() == []
    assert _sandbox_cgroups() == []

