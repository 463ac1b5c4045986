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

