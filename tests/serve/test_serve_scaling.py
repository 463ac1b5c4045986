"""Deployments scale with load: from zero, up under load, back to zero when idle, and
no request fails on the way."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import httpx
import pytest

import actorium
from actorium.exceptions import DeploymentError
from serve_fixtures import serve_cluster, http, deployed  # noqa: F401  (fixtures)
from serve_agents import Echo, Slow
from tests_helpers import wait_until


def _replicas(name: str) -> int:
    return actorium.deployments()[name]["replicas"]


def test_cold_start_from_zero_replicas(http, deployed):
    deployed(Echo, name="s-cold", route_prefix="/cold", min_replicas=0, max_replicas=2)
    assert _replicas("s-cold") == 0
    r = http.post("/cold/echo", json={"args": ["first"]})
    assert r.status_code == 200 and r.json()["value"] == "first"
    assert _replicas("s-cold") == 1


def test_python_handle_queues_while_a_replica_cold_starts(serve_cluster, deployed):
    dep = deployed(Echo, name="s-cold-py", min_replicas=0, max_replicas=1)
    refs = [dep.handle.echo.remote(i) for i in range(20)]
    assert [v["value"] for v in actorium.get(refs, timeout=30)] == list(range(20))


class _Sampler(threading.Thread):
    """Records the deployment's replica count while a load runs."""

    def __init__(self, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.counts = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            self.counts.append(_replicas(self.name_))


async def _ramp(url, headers, phases):
    """Closed-loop clients, ``concurrency`` of them for ``seconds`` per phase; returns
    the status of every request (a bounded load: one request per client at a time)."""
    statuses = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for concurrency, seconds in phases:
            end = time.monotonic() + seconds

            async def one_client():
                while time.monotonic() < end:
                    r = await client.post("/ramp/work", json={"args": [0.02]})
                    statuses.append(r.status_code)
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return statuses


def test_load_ramp_scales_zero_to_many_to_zero_without_a_failed_request(http, deployed):
    deployed(Echo, name="s-ramp", route_prefix="/ramp", min_replicas=0, max_replicas=4,
             target_ongoing_requests=1, idle_timeout_s=1.0)
    assert _replicas("s-ramp") == 0
    sampler = _Sampler("s-ramp")
    sampler.start()
    phases = [(1, 0.5), (3, 1.0), (8, 2.0), (3, 1.0), (1, 1.0)]
    statuses = asyncio.run(_ramp(str(http.base_url).rstrip("/"), dict(http.headers), phases))
    try:
        assert wait_until(lambda: _replicas("s-ramp") == 0, timeout=15)
    finally:
        sampler.stop.set()
        sampler.join(5)
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert max(sampler.counts) > 1
    assert sampler.counts[-1] == 0 or _replicas("s-ramp") == 0


def test_python_callers_scale_the_deployment_up_under_load(serve_cluster, deployed):
    dep = deployed(Echo, name="s-up", min_replicas=1, max_replicas=3,
                   target_ongoing_requests=1, idle_timeout_s=30)
    pids = set()
    deadline = time.monotonic() + 20
    while len(pids) < 3 and time.monotonic() < deadline:
        pids.update(actorium.get([dep.handle.work.remote(0.05) for _ in range(12)],
                                 timeout=30))
    assert len(pids) == 3
    assert _replicas("s-up") == 3


def test_delete_waits_for_requests_in_flight(serve_cluster, deployed, tmp_path):
    dep = deployed(Slow, name="s-drain")
    flag = str(tmp_path / "release")
    ref = dep.handle.hold.remote(flag)
    assert wait_until(lambda: actorium.deployments()["s-drain"]["ongoing"] == 1, 10)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        deleting = pool.submit(actorium.delete_deployment, "s-drain")
        # Draining: the deleted deployment takes no new request, the old one runs on.
        assert wait_until(lambda: _raises(lambda: dep.handle.hold.remote(flag)), 10)
        assert not deleting.done()
        open(flag, "w").close()
        assert actorium.get(ref, timeout=30) == "done"
        deleting.result(timeout=30)
    assert "s-drain" not in actorium.deployments()


def _raises(fn) -> bool:
    try:
        fn()
    except DeploymentError:
        return True
    return False


def test_deployments_lists_status_and_delete_removes(serve_cluster):
    dep = actorium.deploy(Echo, name="s-status", min_replicas=2, max_replicas=3)
    st = actorium.deployments()["s-status"]
    assert (st["replicas"], st["min_replicas"], st["max_replicas"]) == (2, 2, 3)
    assert st["queued"] == 0 and st["class"] == "Echo"
    assert dep.status()["replicas"] == 2
    actorium.delete_deployment("s-status")
    assert "s-status" not in actorium.deployments()
    with pytest.raises(DeploymentError):
        actorium.get(dep.handle.echo.remote(1), timeout=10)
    with pytest.raises(ValueError):
        actorium.delete_deployment("s-status")


def test_bad_deploy_arguments_are_refused_with_a_clear_error(serve_cluster):
    with pytest.raises(ValueError, match="min_replicas"):
        actorium.deploy(Echo, name="bad", min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError, match="name"):
        actorium.deploy(Echo, name="no spaces")
    with pytest.raises(ValueError, match="route_prefix"):
        actorium.deploy(Echo, name="bad", route_prefix="chat")
    with pytest.raises(TypeError, match="api_keys"):
        actorium.deploy(Echo, name="bad", api_keys="one-key-as-a-string")
    with pytest.raises(TypeError, match="class"):
        actorium.deploy(lambda: 1, name="bad")
    with pytest.raises(ValueError, match="target_ongoing_requests"):
        actorium.deploy(Echo, name="bad", target_ongoing_requests=0)


def test_a_constructor_that_raises_fails_the_deploy(serve_cluster):
    class Broken:
        def __init__(self):
            raise RuntimeError("no model")

        def call(self):
            return 1
    with pytest.raises(DeploymentError, match="no model"):
        actorium.deploy(Broken, name="s-broken")
    actorium.delete_deployment("s-broken")


def test_unknown_method_on_the_handle_names_the_methods(serve_cluster, deployed):
    dep = deployed(Echo, name="s-attr")
    with pytest.raises(AttributeError, match="echo"):
        dep.handle.nope.remote()
    with pytest.raises(DeploymentError, match="no deployment named"):
        actorium.get_deployment_handle("absent")


def test_a_crashed_replica_is_replaced(serve_cluster, deployed):
    import os
    import signal
    from actorium.exceptions import ActorDiedError
    dep = deployed(Echo, name="s-crash", min_replicas=1, max_replicas=1)
    pid = actorium.get(dep.handle.pid.remote(), timeout=10)
    os.kill(pid, signal.SIGKILL)

    def served_by_new_replica():
        try:
            return actorium.get(dep.handle.pid.remote(), timeout=10) != pid
        except ActorDiedError:
            return False  # a request that reached the dead replica before it was known
    assert wait_until(served_by_new_replica, timeout=20)
    assert _replicas("s-crash") == 1
