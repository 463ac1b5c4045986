"""Sandboxed functions and actors are scheduled like any other work, on any node.

A two-node ``cluster_utils.Cluster`` inside run_contained.sh (marker ``jail``): the head
has no ``tools`` resource, the second node has it, so sandboxed work that asks for
``tools`` must run in the second node's sandbox zygote (and report that node's id,
which it learns from its hosting worker, not from inside the jail).
"""
import time

import psutil
import pytest

import actorium
from actorium.cluster_utils import Cluster
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module")
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        other = cluster.add_node(num_cpus=1, resources={"tools": 2})
        cluster.wait_for_nodes()
        actorium.init(address=cluster.address)
        try:
            yield cluster, other
        finally:
            actorium.shutdown()
    finally:
        cluster.shutdown()


def jails_under(node) -> list:
    """Running sandbox processes in ``node``'s process tree (idle spares excepted): the
    processes in a ``sbx-*`` sandbox cgroup, or, without cgroups, under a sandbox uid."""
    from actorium.isolation.jail import SANDBOX_UID_BASE
    out = []
    for p in psutil.Process(node.pid).children(recursive=True):
        try:
            with open(f"/proc/{p.pid}/cgroup") as f:
                cgroups = f.read()
            if "/actorium/sbx-" in cgroups or (
                    "/actorium/" not in cgroups and p.uids().real >= SANDBOX_UID_BASE):
                out.append(p)
        except (psutil.NoSuchProcess, OSError):
            pass
    return out


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@actorium.remote(isolation="sandbox", resources={"tools": 1})
def inside(x, hold=0.0):
    import os
    import time
    time.sleep(hold)
    return {"pid": os.getpid(), "uid": os.getuid(), "double": 2 * x}


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n


def test_sandboxed_function_runs_on_the_node_with_its_resource(two_nodes):
    cluster, other = two_nodes
    ref = inside.remote(21, hold=2.0)
    wait_for(lambda: jails_under(other))
    assert jails_under(cluster.head_node) == []
    assert actorium.get(ref, timeout=60) == {"pid": 1, "uid": 1000, "double": 42}


def test_sandboxed_function_follows_node_affinity(two_nodes):
    _, other = two_nodes
    strategy = NodeAffinitySchedulingStrategy(other.node_id, soft=False)
    ref = inside.options(resources={}, scheduling_strategy=strategy).remote(1, hold=2.0)
    wait_for(lambda: jails_under(other))
    assert actorium.get(ref, timeout=60)["double"] == 2


def test_sandboxed_actor_lives_on_the_node_with_its_resource(two_nodes):
    cluster, other = two_nodes
    Tool = actorium.remote(isolation="sandbox", num_cpus=0, resources={"tools": 1})(Counter)
    tool = Tool.remote()
    assert actorium.get(tool.add.remote(2), timeout=60) == 2
    assert actorium.get(tool.add.remote(3), timeout=60) == 5
    assert jails_under(other) and jails_under(cluster.head_node) == []
    actorium.kill(tool)
    wait_for(lambda: not jails_under(other))
