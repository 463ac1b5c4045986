"""Head restart: the gcs's tables come back from LMDB on disk; live nodes and a
connected driver reconnect and go on; named and detached actors stay resolvable."""
from __future__ import annotations

import time

import actorium
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests_helpers import wait_until


@actorium.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


@actorium.remote
def double(x):
    return 2 * x


def test_driver_and_nodes_go_on_after_the_head_is_killed_and_restarted(make_cluster):
    c = make_cluster(head_cpus=1)
    worker_node = c.add_node(num_cpus=2)
    on_worker = NodeAffinitySchedulingStrategy(worker_node.node_id, soft=False)
    counter = Counter.options(name="survivor", lifetime="detached",
                              scheduling_strategy=on_worker).remote()
    assert actorium.get(counter.incr.remote()) == 1
    assert actorium.get([double.remote(i) for i in range(10)]) == [2 * i for i in range(10)]

    old_head = c.head_node
    c.remove_node(old_head, allow_graceful=False)
    time.sleep(0.5)
    new_head = c.restart_head()
    # The driver's own node died with the head: it moves to a live node and goes on.
    assert wait_until(lambda: actorium.get_runtime_context().get_node_id() != old_head.node_id,
                      timeout=30)
    assert actorium.get([double.remote(i) for i in range(20)], timeout=60) == \
        [2 * i for i in range(20)]
    # The actor on the surviving node kept its state; its name resolves in the new gcs.
    assert actorium.get(counter.incr.remote(), timeout=30) == 2
    assert actorium.get(actorium.get_actor("survivor").incr.remote(), timeout=30) == 3
    alive = {n["NodeID"]: n["Alive"] for n in actorium.nodes()}
    assert alive[worker_node.node_id] and alive[new_head.node_id]
    assert wait_until(lambda: not {n["NodeID"]: n["Alive"]
                                   for n in actorium.nodes()}[old_head.node_id], 10)
