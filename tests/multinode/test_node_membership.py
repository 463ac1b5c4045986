"""Nodes joining a head, the node table, heartbeats and failure detection."""
from __future__ import annotations

import os
import time

import actorium
from actorium.core import launcher
from tests_helpers import actorium_node_pids, wait_until


def _alive(node_id: str) -> bool:
    return {n["NodeID"]: n["Alive"] for n in actorium.nodes()}[node_id]


def test_nodes_lists_every_node_with_id_alive_flag_and_resources(make_cluster):
    c = make_cluster(head_cpus=1)
    n2 = c.add_node(num_cpus=2, resources={"browser": 3})
    listed = {n["NodeID"]: n for n in actorium.nodes()}
    assert set(listed) == {c.head_node.node_id, n2.node_id}
    assert all(n["Alive"] for n in listed.values())
    assert listed[n2.node_id]["Resources"]["CPU"] == 2.0
    assert listed[n2.node_id]["Resources"]["browser"] == 3.0
    assert listed[c.head_node.node_id]["IsHead"]
    assert actorium.cluster_resources()["CPU"] == 3.0


def test_non_head_nodes_listen_on_tcp(make_cluster):
    c = make_cluster()
    n2 = c.add_node(num_cpus=1)
    assert n2.raylet_address.startswith("tcp://127.0.0.1:")
    assert c.head_node.raylet_address.startswith("tcp://")


def test_runtime_context_node_id_is_the_node_handle_id(make_cluster):
    from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    from mn_helpers import node_of
    c = make_cluster()
    n2 = c.add_node(num_cpus=1)
    strategy = NodeAffinitySchedulingStrategy(n2.node_id, soft=False)
    assert actorium.get(node_of.options(scheduling_strategy=strategy).remote()) == n2.node_id
    assert actorium.get_runtime_context().get_node_id() == c.head_node.node_id


def test_killed_node_is_marked_dead_by_the_gcs(make_cluster):
    c = make_cluster()
    n2 = c.add_node(num_cpus=1)
    assert _alive(n2.node_id)
    killed = time.monotonic()
    c.remove_node(n2, allow_graceful=False)
    assert wait_until(lambda: not _alive(n2.node_id), timeout=10)
    # Default detection is <= 2 s; allow for a loaded machine (benchmarks measure it).
    assert time.monotonic() - killed < 6
    assert "heartbeat" in {n["NodeID"]: n for n in actorium.nodes()}[n2.node_id]["DeathReason"]


def test_node_timeout_is_configurable(make_cluster):
    c = make_cluster(node_timeout=4.0)
    n2 = c.add_node(num_cpus=1)
    c.remove_node(n2, allow_graceful=False)
    time.sleep(2.0)  # longer than the default timeout, shorter than the configured one
    assert _alive(n2.node_id)
    assert wait_until(lambda: not _alive(n2.node_id), timeout=10)


def test_gracefully_removed_node_goes_dead_and_leaves_nothing(make_cluster):
    c = make_cluster()
    n2 = c.add_node(num_cpus=1)
    c.remove_node(n2, allow_graceful=True)
    c.wait_for_nodes()
    assert n2.process.poll() is not None
    assert wait_until(lambda: not os.path.exists(n2.store_root), 10)


def test_cluster_shutdown_leaves_no_process_and_no_shm(make_cluster):
    c = make_cluster()
    n2 = c.add_node(num_cpus=1)
    c.add_node(num_cpus=1)
    c.remove_node(n2, allow_graceful=False)  # a killed node leaves its store behind...
    actorium.shutdown()
    c.shutdown()
    # ...which the cluster's shutdown removes.
    assert wait_until(lambda: not actorium_node_pids(c.session_dir), 10)
    assert not os.path.exists(launcher.session_store_dir(c.session_dir))


def test_cluster_nodes_stop_when_the_process_that_made_them_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent("""
        import sys, time
        from actorium.cluster_utils import Cluster
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        c.add_node(num_cpus=1)
        print(c.session_dir, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    session = ""
    try:
        session = proc.stdout.readline().strip()
        assert session and actorium_node_pids(session)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not actorium_node_pids(session), 15)
        # Each node removed its own /dev/shm store on the way out.
        assert wait_until(lambda: not os.path.exists(launcher.session_store_dir(session)), 5)
    finally:
        proc.kill()
        if session:
            launcher.cleanup_session(session)
