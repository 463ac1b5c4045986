"""Cluster views, resources, runtime context and worker output."""
from __future__ import annotations

import os
import time

import pytest

import actorium


@pytest.fixture(scope="module")
def gpu_cluster():
    actorium.init(num_cpus=2, num_gpus=1, resources={"browser": 2})
    try:
        yield
    finally:
        actorium.shutdown()


def test_nodes_lists_the_local_node_alive(gpu_cluster):
    nodes = actorium.nodes()
    assert len(nodes) == 1 and nodes[0]["Alive"]
    assert nodes[0]["NodeID"] == actorium.get_runtime_context().get_node_id()


def test_cluster_resources_report_totals(gpu_cluster):
    total = actorium.cluster_resources()
    assert total["CPU"] == 2 and total["GPU"] == 1 and total["browser"] == 2


def test_available_resources_drop_while_an_actor_holds_them(gpu_cluster):
    @actorium.remote(num_cpus=1, resources={"browser": 1})
    class Browser:
        def ping(self):
            return "pong"

    b = Browser.remote()
    actorium.get(b.ping.remote())
    assert actorium.available_resources().get("browser", 0) == 1
    actorium.kill(b)
    deadline = time.monotonic() + 10
    while actorium.available_resources().get("browser", 0) != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_gpu_tasks_are_limited_by_gpu_count(gpu_cluster, tmp_path):
    @actorium.remote(num_gpus=1)
    def exclusive(path):
        import fcntl
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails if two run at once
            time.sleep(0.1)
        return True

    assert all(actorium.get([exclusive.remote(str(tmp_path / "gpu")) for _ in range(4)]))


def test_custom_resource_tasks_run(gpu_cluster):
    @actorium.remote(resources={"browser": 1})
    def browse():
        return "page"

    assert actorium.get([browse.remote() for _ in range(3)]) == ["page"] * 3


def test_runtime_context_inside_tasks_and_actors(gpu_cluster):
    @actorium.remote
    def ctx():
        c = actorium.get_runtime_context()
        return c.get_task_id(), c.get_actor_id(), c.get_job_id()

    @actorium.remote
    class A:
        def ctx(self):
            return actorium.get_runtime_context().get_actor_id()

    task_id, actor_id, job = actorium.get(ctx.remote())
    assert task_id and actor_id is None
    assert job == actorium.get_runtime_context().get_job_id()
    assert actorium.get(A.remote().ctx.remote())


def test_worker_output_reaches_the_driver_with_a_prefix(gpu_cluster, capfd):
    @actorium.remote
    def speak():
        print("hello from a worker")
        return os.getpid()

    pid = actorium.get(speak.remote())
    deadline = time.monotonic() + 10
    out = ""
    while f"pid={pid}) hello from a worker" not in out:
        assert time.monotonic() < deadline, out
        time.sleep(0.05)
        out += capfd.readouterr().out


def test_is_initialized_reflects_state(gpu_cluster):
    assert actorium.is_initialized()


def test_actor_calls_are_retried_after_a_restart_with_max_task_retries(gpu_cluster, tmp_path):
    marker = tmp_path / "crashed"

    @actorium.remote(max_restarts=1, max_task_retries=1)
    class Fragile:
        def work(self):
            if not marker.exists():
                marker.write_text("1")
                os._exit(1)
            return "done"

    f = Fragile.remote()
    assert actorium.get(f.work.remote(), timeout=60) == "done"


def test_named_actor_in_another_namespace_is_not_visible(gpu_cluster):
    @actorium.remote
    class Named:
        def ping(self):
            return 1

    keep = Named.options(name="ns-actor", namespace="other").remote()  # noqa: F841 (alive)
    with pytest.raises(ValueError):
        actorium.get_actor("ns-actor")
    assert actorium.get(actorium.get_actor("ns-actor", namespace="other").ping.remote()) == 1
