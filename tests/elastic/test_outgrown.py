"""A durable resources="auto" actor that outgrows its node is moved, with its state, to a
node with room. Two real node processes."""
from __future__ import annotations

import time

import pytest

import actorium
from actorium.cluster_utils import Cluster
from actorium.core import api
from actorium.core.wire import protocol, transport
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests_helpers import actorium_node_pids, wait_until


@actorium.remote(resources="auto", checkpoint="auto")
class Worker:
    def __init__(self):
        self.calls = 0

    def bump(self):
        self.calls += 1
        return self.calls

    def node(self):
        return actorium.get_runtime_context().get_node_id()

    def spin(self, seconds):
        end = time.time() + seconds
        while time.time() < end:
            pass
        return self.node()


@pytest.mark.slow
def test_durable_actor_that_outgrows_its_node_moves_with_its_state(monkeypatch):
    monkeypatch.setenv("ACTORIUM_AUTO_SAMPLE_PERIOD", "0.2")
    monkeypatch.setenv("ACTORIUM_AUTO_WINDOW", "1.0")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False)
    try:
        big = c.add_node(num_cpus=2)
        actorium.init(address=c.address)
        head = c.head_node.node_id
        w = Worker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            head, soft=True)).remote()
        assert actorium.get(w.node.remote(), timeout=30) == head
        assert actorium.get(w.bump.remote(), timeout=30) == 1
        # Wants a whole core plus headroom: more than the 1-CPU head can give.
        where = actorium.get(w.spin.remote(6.0), timeout=90)
        assert where == big.node_id
        assert actorium.get(w.bump.remote(), timeout=30) == 2  # state came along
        listed = api._worker().rpc_gcs(protocol.ListState(transport.next_req_id(), "actors"))
        moved = [a for a in listed if a["actor_id"] == w._actor_id]
        assert moved and moved[0]["restarts"] == 0  # a move is not a failure
    finally:
        actorium.shutdown()
        c.shutdown()
        assert wait_until(lambda: not actorium_node_pids(c.session_dir), 10)
