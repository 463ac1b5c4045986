"""Deployments survive a head restart: the controller and the ingress come back (they
are detached actors with restarts), re-read the deployments from the gcs, and adopt
the replicas that kept running on other nodes."""
from __future__ import annotations

import os
import time

import httpx
import pytest

import actorium
from actorium.cluster_utils import Cluster
from actorium.core import launcher
import serve_fixtures  # noqa: F401  (ships serve_agents by value)
from serve_agents import Echo
from tests_helpers import actorium_node_pids, wait_until


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False)
    try:
        yield c
    finally:
        actorium.shutdown()
        c.shutdown()
        assert wait_until(lambda: not actorium_node_pids(c.session_dir), 10)
        assert not os.path.exists(launcher.session_store_dir(c.session_dir))


def _pid_via_handle(handle):
    try:
        return actorium.get(handle.pid.remote(), timeout=5)
    except Exception:
        return None


def _http_pid(url, token):
    try:
        r = httpx.post(url + "/svc/pid", json={}, timeout=5,
                       headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None


def test_deployment_and_ingress_survive_a_head_restart(cluster):
    cluster.add_node(num_cpus=2, resources={"replicas": 10})
    actorium.init(address=cluster.address)
    dep = actorium.deploy(Echo, name="svc", route_prefix="/svc", min_replicas=2,
                          max_replicas=2, resources={"replicas": 1})
    url, token = actorium.http_url(), actorium.cluster_token()
    before = {actorium.get(dep.handle.options(session=f"s{i}").pid.remote(), timeout=10)
              for i in range(20)}
    assert len(before) == 2
    assert _http_pid(url, token) in before

    cluster.remove_node(cluster.head_node, allow_graceful=False)
    time.sleep(0.5)
    cluster.restart_head()

    # The restarted controller adopted the replicas on the surviving node: same pids.
    assert wait_until(lambda: _pid_via_handle(dep.handle) is not None, timeout=60)
    after = {actorium.get(dep.handle.options(session=f"s{i}").pid.remote(), timeout=10)
             for i in range(20)}
    assert after == before
    # (adopted replicas count once they answered the restarted controller)
    assert wait_until(lambda: actorium.deployments()["svc"]["replicas"] == 2, timeout=30)
    assert {actorium.get(dep.handle.pid.remote(), timeout=10) for _ in range(10)} <= before
    # The ingress came back on its address.
    assert wait_until(lambda: _http_pid(url, token) is not None, timeout=60)
    assert _http_pid(url, token) in before
