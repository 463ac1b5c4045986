"""Fixtures for multi-node tests: real node processes on this machine, each in its own
process group with its own ports and /dev/shm store, torn down even on failure, and
checked for leftovers (processes and /dev/shm) after every test."""
from __future__ import annotations

import os

import pytest

import actorium
from actorium.cluster_utils import Cluster
from actorium.core import launcher
from tests_helpers import actorium_node_pids, wait_until


def pytest_collection_modifyitems(config, items):
    """A hung multi-node test fails on its own instead of stalling the whole suite."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(180))


@pytest.fixture
def make_cluster():
    """``make_cluster(head_cpus=1, connect=True)`` -> a Cluster with a driver attached."""
    made = []

    def make(head_cpus: float = 1, connect: bool = True, **head_args) -> Cluster:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, **head_args},
                    shutdown_at_exit=False)
        made.append(c)
        if connect:
            actorium.init(address=c.address)
        return c
    try:
        yield make
    finally:
        actorium.shutdown()
        for c in made:
            c.shutdown()
        for c in made:
            assert wait_until(lambda: not actorium_node_pids(c.session_dir), 10), \
                f"processes of {c.session_dir} survived shutdown"
            assert not os.path.exists(launcher.session_store_dir(c.session_dir)), \
                "a /dev/shm store survived shutdown"



class Shared:
    """One cluster for a module whose tests kill nothing they did not add:
    head (1 CPU, the driver's node), ``a`` (2 CPUs), ``b`` (1 CPU and the custom
    resources ``browser: 2`` and ``memory_heavy: 1``)."""

    def __init__(self):
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1},
                               shutdown_at_exit=False)
        self.head = self.cluster.head_node
        self.a = self.cluster.add_node(num_cpus=2)
        self.b = self.cluster.add_node(num_cpus=1, resources={"browser": 2, "memory_heavy": 1})

    def live_ids(self) -> set:
        return {n["NodeID"] for n in actorium.nodes() if n["Alive"]}


@pytest.fixture(scope="module")
def shared():
    s = Shared()
    try:
        actorium.init(address=s.cluster.address)
        yield s
    finally:
        actorium.shutdown()
        s.cluster.shutdown()
        assert wait_until(lambda: not actorium_node_pids(s.cluster.session_dir), 10)
        assert not os.path.exists(launcher.session_store_dir(s.cluster.session_dir))
