"""``wait(fetch_local=True)`` counts a ref ready only once its value is on the caller's
node, as Ray: a value that exists elsewhere but has not arrived within the timeout is
not ready yet. Cluster: conftest.Shared (the driver on the head; nodes a and b)."""
from __future__ import annotations

import os

import numpy as np

import actorium
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy

MIB = 1 << 20


@actorium.remote(num_cpus=0)
def make_array(n: int):
    return np.ones(n)


def _here(node, ref) -> bool:
    return os.path.exists(os.path.join(node.store_root, "objects", ref.id.hex()))


def test_wait_fetch_local_does_not_count_a_value_on_another_node_ready_before_it_arrives(
        shared):
    c, a = shared.cluster, shared.a
    ref = make_array.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        a.node_id, soft=False)).remote(8 * MIB)  # 64 MiB, on node a
    ready, _ = actorium.wait([ref], timeout=60, fetch_local=False)
    assert ready == [ref]  # the value exists ...
    assert actorium.wait([ref], timeout=0, fetch_local=True) == ([], [ref])  # ... not here
    assert not _here(c.head_node, ref)
    ready, _ = actorium.wait([ref], timeout=60, fetch_local=True)
    assert ready == [ref] and _here(c.head_node, ref)
