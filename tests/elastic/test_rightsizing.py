"""resources="auto": actors are packed by measured use, and their cgroup CPU quota and
memory limit follow that use up and down. Real node processes, real cgroups (v1 on the
test machine; the tests that read cgroup files skip where cgroups are not writable)."""
from __future__ import annotations

import glob
import os
import time

import pytest

import actorium
from actorium.core import api
from actorium.isolation.worker_cgroup import Controller
from tests_helpers import actorium_node_pids, wait_until

# Short sampling and memory of peaks, so limits move within a test's seconds.
FAST = {"ACTORIUM_AUTO_SAMPLE_PERIOD": "0.2", "ACTORIUM_AUTO_WINDOW": "1.0"}


def _cgroups_writable() -> str:
    probe = Controller("probe")
    return probe.mode and "" or probe.why


needs_cgroups = pytest.mark.skipif(bool(_cgroups_writable()),
                                   reason=f"cgroups not writable here: {_cgroups_writable()}")


@pytest.fixture
def fast_cluster(monkeypatch):
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    info = actorium.init(num_cpus=2)
    try:
        yield info
    finally:
        session = info.get("session_dir", "")
        actorium.shutdown()
        assert wait_until(lambda: not actorium_node_pids(session), 10), "node processes survived"
        assert wait_until(lambda: not _auto_cgroups(), 5), f"cgroups survived: {_auto_cgroups()}"


def _auto_cgroups() -> list[str]:
    return [d for d in glob.glob("/sys/fs/cgroup/*/**/actorium/auto-*", recursive=True)
            if os.path.isdir(d)]


@actorium.remote(resources="auto")
class Agent:
    def pid(self):
        return os.getpid()

    def spin(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            pass
        return True

    def hold(self, mib):
        self.buf = bytearray(mib << 20)  # zero-filled: every page is touched
        return len(self.buf)

    def free(self):
        self.buf = None
        return True


def _usage(actor) -> dict:
    aid = actor._actor_id.hex()
    for n in api._node_stats(api._worker()):
        if aid in (n.get("actors") or {}):
            return n["actors"][aid]
    return {}


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, rel = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                with open(f"/sys/fs/cgroup/{controller}{rel}/{name}") as g:
                    return g.read().strip()
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


@needs_cgroups
def test_cpu_quota_follows_a_cpu_hungry_actor_up_and_down(fast_cluster):
    a = Agent.remote()
    pid = actorium.get(a.pid.remote(), timeout=30)
    assert wait_until(lambda: _usage(a).get("limited"), 5)
    idle_limit = _usage(a)["cpu_limit"]
    assert idle_limit <= 0.2
    busy = a.spin.remote(4.0)
    assert wait_until(lambda: _usage(a)["cpu_limit"] >= 0.8, 4), _usage(a)
    # The reservation follows the measured use, one sample behind the limit.
    assert wait_until(lambda: _usage(a)["cpu"] >= 0.4 and _usage(a)["reserved"]["CPU"] >= 0.5,
                      3), _usage(a)
    quota = int(_cgroup_file(pid, "cpu", "cpu.cfs_quota_us"))
    assert quota >= 0.8 * 100_000, quota  # the kernel's quota, not only our bookkeeping
    assert actorium.get(busy, timeout=30)
    assert wait_until(lambda: _usage(a)["cpu_limit"] <= 0.2, 6), _usage(a)
    assert int(_cgroup_file(pid, "cpu", "cpu.cfs_quota_us")) <= 0.2 * 100_000
    assert _usage(a)["reserved"]["CPU"] <= 0.1


@needs_cgroups
def test_memory_limit_follows_a_memory_hungry_actor_up_and_down(fast_cluster):
    a = Agent.remote()
    pid = actorium.get(a.pid.remote(), timeout=30)
    assert wait_until(lambda: _usage(a).get("limited"), 5)
    start_limit = _usage(a)["memory_limit"]
    # Grows past its limit in one call: stalled at the limit, raised, never OOM-killed.
    for mib in (200, 400, 600):
        assert actorium.get(a.hold.remote(mib), timeout=30) == mib << 20
    assert wait_until(lambda: _usage(a)["memory_limit"] >= 600 << 20, 4), _usage(a)
    assert _usage(a)["memory"] >= 500 << 20
    assert int(_cgroup_file(pid, "memory", "memory.limit_in_bytes")) >= 600 << 20
    assert _usage(a)["reserved"]["memory"] >= 600 << 20
    assert actorium.get(a.free.remote(), timeout=30)
    assert wait_until(lambda: _usage(a)["memory_limit"] <= start_limit, 6), _usage(a)
    assert int(_cgroup_file(pid, "memory", "memory.limit_in_bytes")) <= start_limit
    assert actorium.get(a.pid.remote(), timeout=10) == pid  # the same process throughout


def test_idle_auto_actors_pack_tighter_than_one_cpu_each(fast_cluster):
    fixed = [Agent.options(resources=None, num_cpus=1).remote() for _ in range(3)]
    ready, pending = actorium.wait([f.pid.remote() for f in fixed], num_returns=3, timeout=3)
    assert len(ready) == 2 and len(pending) == 1  # 2 CPUs: the third waits for one
    for f in fixed:
        actorium.kill(f)
    agents = [Agent.remote() for _ in range(10)]
    pids = actorium.get([x.pid.remote() for x in agents], timeout=60)
    assert len(set(pids)) == 10
    # available_resources reflects the measured packing: idle agents reserve little.
    assert wait_until(lambda: actorium.available_resources().get("CPU", 0) >= 1.0, 5), \
        actorium.available_resources()
    assert actorium.available_resources()["CPU"] < 2.0


def test_fixed_requests_are_not_resized(fast_cluster):
    f = Agent.options(resources=None, num_cpus=1).remote()
    actorium.get(f.spin.remote(0.6), timeout=30)
    assert wait_until(lambda: _usage(f).get("cpu") is not None, 5)
    u = _usage(f)
    assert not u["auto"] and u["reserved"] == {"CPU": 1.0}
    assert actorium.available_resources()["CPU"] == pytest.approx(1.0)


def test_auto_is_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="for actors only"):
        @actorium.remote(resources="auto")
        def f():
            pass
    with pytest.raises(ValueError, match="do not also give num_cpus"):
        Agent.options(num_cpus=1)
    with pytest.raises(ValueError, match="or 'auto'"):
        Agent.options(resources="automatic")
