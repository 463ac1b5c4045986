"""The node autoscaler: ``actorium start --head --autoscale local`` adds a real node
process for demand no node can hold, removes it once idle, and leaves nothing running
after ``actorium stop``. Plus the policy's decisions on their own."""
from __future__ import annotations

import os
import re

import psutil
import pytest

from actorium.autoscaler import policy
from cli.test_cli import _session_pids, env  # noqa: F401  (env: the CLI tests' fixture)
from tests_helpers import wait_until


def _node(node_id, available, busy=0, idle_for=0.0, pending=0, head=False):
    return {"node_id": node_id, "head": head, "total": dict(available),
            "available": dict(available), "busy": busy, "draining": False,
            "pending": pending, "idle_for": idle_for, "pid": 1}


ONE_CPU = {"CPU": 1.0, "memory": 1e9}


def test_policy_adds_nodes_only_for_demand_that_fits_nowhere_and_only_once_confirmed():
    cfg = policy.Config(min_nodes=0, max_nodes=3, idle_timeout=5)
    demand = {"nodes": [_node("head", {"CPU": 0.5}, busy=1, head=True)],
              "pending": [{"CPU": 0.5}, {"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 8.0}]}
    first = policy.decide(demand, set(), ONE_CPU, cfg, previous_unmet=0)
    assert first.launch == 0 and len(first.unmet) == 3  # heartbeats may lag: wait a poll
    plan = policy.decide(demand, set(), ONE_CPU, cfg, previous_unmet=1)
    assert plan.launch == 2  # the 0.5 fits the head; two 1-CPU shapes need two nodes
    assert plan.infeasible == [{"CPU": 8.0}]
    capped = policy.decide(demand, {"a", "b"}, ONE_CPU, cfg, previous_unmet=1)
    assert capped.launch == 1  # max_nodes=3


def test_policy_removes_only_its_own_idle_nodes_above_min_nodes():
    cfg = policy.Config(min_nodes=1, max_nodes=3, idle_timeout=5)
    demand = {"nodes": [_node("head", ONE_CPU, idle_for=100, head=True),
                        _node("a", ONE_CPU, idle_for=9), _node("b", ONE_CPU, idle_for=7),
                        _node("c", ONE_CPU, idle_for=2), _node("other", ONE_CPU, idle_for=50)],
              "pending": []}
    plan = policy.decide(demand, {"a", "b", "c"}, ONE_CPU, cfg, previous_unmet=0)
    assert plan.terminate == ["a", "b"]
    floor = policy.decide(demand, {"a"}, ONE_CPU, cfg, previous_unmet=0)
    assert floor.terminate == []  # min_nodes=1
    with pytest.raises(ValueError, match="min_nodes <= max_nodes"):
        policy.Config(min_nodes=2, max_nodes=1)


DRIVER = """
import actorium, os
actorium.init(address="auto")
@actorium.remote(num_cpus=2)
class Big:
    def where(self):
        return actorium.get_runtime_context().get_node_id()
b = Big.remote()
print("NODE", actorium.get(b.where.remote(), timeout=60))
actorium.kill(b)
"""


def test_local_autoscaler_adds_a_node_for_unplaceable_demand_and_removes_it_when_idle(env):
    cur = env.start("--num-cpus", "1", "--autoscale", "local", "--max-nodes", "2",
                    "--node-cpus", "2", "--idle-timeout", "2")
    monitor_pid = cur["autoscaler_pid"]
    assert psutil.pid_exists(monitor_pid)
    out = env.driver(DRIVER, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    node_id = re.search(r"NODE (\w+)", out.stdout).group(1)
    assert node_id != cur["node_id"]  # it ran on the node the autoscaler added

    def status():
        return env.cli("status").stdout
    assert f"created node {node_id[:12]}" in status()
    # Idle for 2 s after the actor is gone: drained, terminated, its processes reaped.
    assert wait_until(lambda: f"removed idle node {node_id[:12]}" in status(), 30), status()
    text = status()
    assert "Nodes: 1 alive, 1 dead" in text and "Autoscaler: provider local, 0 node(s)" in text
    assert not any(node_id in " ".join(p.cmdline()) for p in psutil.process_iter()
                   if _safe_cmd(p))
    stopped = env.cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: not psutil.pid_exists(monitor_pid)
                      or psutil.Process(monitor_pid).status() == psutil.STATUS_ZOMBIE, 10)
    assert wait_until(lambda: not _session_pids(cur["session_dir"]), 10)
    assert not os.path.exists(f"/dev/shm/actorium/{os.path.basename(cur['session_dir'])}")


def _safe_cmd(p) -> bool:
    try:
        return bool(p.cmdline())
    except psutil.Error:
        return False


def test_autoscale_flags_are_checked(env):
    bad = env.cli("start", "--head", "--port", "0", "--autoscale", "cloud9")
    assert bad.returncode == 1 and "unknown --autoscale provider 'cloud9'" in bad.stderr
    bad = env.cli("start", "--head", "--port", "0", "--autoscale", "local",
                  "--min-nodes", "3", "--max-nodes", "2")
    assert bad.returncode == 1 and "--min-nodes <= --max-nodes" in bad.stderr
    assert env.current() is None  # nothing was started
