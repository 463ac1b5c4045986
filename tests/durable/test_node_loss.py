"""kill -9 of the node hosting a session (its raylet, zygote and workers at once) while
requests run: the session wakes on another node from its checkpoint and journal, each
request books once, answers agree with the journal, and the log loses no event."""
from __future__ import annotations

import os
import shutil
import sys
import time

import cloudpickle
import pytest

import actorium
import durable_cluster as dc
from actorium.cluster_utils import Cluster
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests_helpers import actorium_node_pids, wait_until

cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(dc)


@pytest.fixture
def cluster():
    """A head (the driver's node) and nothing else yet; torn down even on failure."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False)
    try:
        actorium.init(address=c.address)
        yield c
    finally:
        actorium.shutdown()
        c.shutdown()
        assert wait_until(lambda: not actorium_node_pids(c.session_dir), 10)


def sessions_on(node, keys, path):
    cls = actorium.remote(dc.Agent).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=True))
    return {k: actorium.session(k, cls, k, path) for k in keys}


@pytest.mark.timeout(180)
def test_sessions_on_a_killed_node_wake_elsewhere_and_book_exactly_once(cluster, tmp_path):
    victim = cluster.add_node(num_cpus=1)
    path, hold = str(tmp_path / "bookings"), str(tmp_path / "hold")
    sessions = sessions_on(victim, ["nl-a", "nl-b", "nl-c"], path)
    for s in sessions.values():
        assert actorium.get(s.node.remote(), timeout=60) == victim.node_id
    # nl-a's second request hangs right after its booking; the others queue behind it.
    refs = {k: [s.handle.remote(hold if (k == "nl-a" and i == 1) else "") for i in range(4)]
            for k, s in sessions.items()}
    assert wait_until(lambda: os.path.exists(hold), 60)
    cluster.remove_node(victim, allow_graceful=False)
    for key, s in sessions.items():
        answers = actorium.get(refs[key], timeout=90)
        assert actorium.get(s.node.remote(), timeout=30) != victim.node_id
        dc.check_exactly_once(key, path, answers)
    # The cut-off booking was found by the check, not made again.
    steps = [e["name"] for e in actorium.durable.events("nl-a") if e["kind"] == "step"]
    assert "check" in steps and "book-again" not in steps


def node_kill_to_answer(cluster, path: str, hold: str) -> float:
    """Seconds from SIGKILL of the session's node to its cut-off request's answer."""
    victim = cluster.add_node(num_cpus=1)
    (s,) = sessions_on(victim, [f"t-{victim.node_id[:8]}"], path).values()
    assert actorium.get(s.node.remote(), timeout=60) == victim.node_id
    ref = s.handle.remote(hold)
    assert wait_until(lambda: os.path.exists(hold), 60)
    t = time.monotonic()
    cluster.remove_node(victim, allow_graceful=False)
    actorium.get(ref, timeout=60)
    return time.monotonic() - t


@pytest.mark.timeout(180)
def test_sessions_go_on_exactly_once_when_the_head_is_killed_and_restarted(cluster, tmp_path):
    worker = cluster.add_node(num_cpus=1)
    path = str(tmp_path / "bookings")
    sessions = sessions_on(worker, ["hd-a", "hd-b"], path)
    sessions.update(sessions_on(cluster.head_node, ["hd-on-head"], path))  # dies with it
    refs = {k: [s.handle.remote("", 0.02) for _ in range(40)] for k, s in sessions.items()}
    assert wait_until(lambda: len(dc.bookings(path)) >= 2, 60)  # requests are running
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    assert len(dc.bookings(path)) < 100  # most requests are still to come
    time.sleep(0.5)  # requests keep running on the worker node without a gcs
    cluster.restart_head()
    for key, s in sessions.items():
        answers = actorium.get(refs[key], timeout=90)
        answers += [actorium.get(s.handle.remote(), timeout=60)]  # and it takes new ones
        dc.check_exactly_once(key, path, answers)


@pytest.mark.timeout(180)
def test_a_lost_head_store_is_restored_from_the_standby_on_another_node(cluster, tmp_path):
    """Every acknowledged durable write is also on the standby's disk: with the head's
    durable store deleted before the head restarts, nothing acknowledged is lost."""
    worker = cluster.add_node(num_cpus=1)
    path = str(tmp_path / "bookings")
    (s,) = sessions_on(worker, ["rp-a"], path).values()
    answers = [actorium.get(s.handle.remote(), timeout=60) for _ in range(5)]
    log = actorium.durable.events("rp-a")
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    shutil.rmtree(os.path.join(cluster.session_dir, "gcs", "durable"))
    cluster.restart_head()
    assert actorium.durable.events("rp-a")[:len(log)] == log
    answers += [actorium.get(s.handle.remote(), timeout=60) for _ in range(3)]
    dc.check_exactly_once("rp-a", path, answers)
    assert "restored from a standby copy" in gcs_log(cluster)


def gcs_log(cluster) -> str:
    with open(os.path.join(cluster.session_dir, "logs", "gcs.log")) as f:
        return f.read()


@pytest.mark.timeout(180)
def test_when_the_standby_node_dies_another_node_takes_over_the_copy(cluster, tmp_path):
    a, b = cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)
    path = str(tmp_path / "bookings")
    (s,) = sessions_on(cluster.head_node, ["sb-a"], path).values()
    answers = [actorium.get(s.handle.remote(), timeout=60) for _ in range(3)]
    first = a if f"replicated to node {a.node_id}" in gcs_log(cluster) else b
    other = b if first is a else a
    cluster.remove_node(first, allow_graceful=False)
    answers += [actorium.get(s.handle.remote(), timeout=60) for _ in range(3)]
    assert f"replicated to node {other.node_id}" in gcs_log(cluster)
    log = actorium.durable.events("sb-a")
    # Only the new standby's copy is left: the head's store is lost with the head.
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    shutil.rmtree(os.path.join(cluster.session_dir, "gcs", "durable"))
    cluster.restart_head()
    assert actorium.durable.events("sb-a")[:len(log)] == log
    answers += [actorium.get(s.handle.remote(), timeout=60)]
    dc.check_exactly_once("sb-a", path, answers)
