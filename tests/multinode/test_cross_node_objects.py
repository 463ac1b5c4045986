"""Objects across nodes: pulled raylet to raylet in chunks into the reader's store.
One shared cluster (conftest.Shared): head (the driver's node), a, b."""
from __future__ import annotations

import numpy as np

import actorium
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy

MIB = 1 << 20


def on(node):
    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)


@actorium.remote(num_cpus=0)
def make_array(n: int, fill: float):
    return np.full(n, fill)


@actorium.remote(num_cpus=0)
def summarize(arr):
    from actorium.core.objects.object_ref import _worker
    return float(arr.sum()), arr.nbytes, _worker.store.usage()["num_objects"]


def _copies(node_store_root: str, object_hex: str) -> bool:
    import os
    return os.path.exists(os.path.join(node_store_root, "objects", object_hex))


def test_task_on_another_node_pulls_its_argument_into_its_store(shared):
    c, a, b = shared.cluster, shared.a, shared.b
    ref = make_array.options(scheduling_strategy=on(a)).remote(3 * MIB, 2.0)  # 24 MiB: 3 chunks
    total, nbytes, objects_on_b = actorium.get(
        summarize.options(scheduling_strategy=on(b)).remote(ref))
    assert total == 2.0 * 3 * MIB and nbytes == 24 * MIB
    assert objects_on_b >= 1  # the copy lives in b's store, not only in a's
    assert _copies(b.store_root, ref.id.hex())
    # Nothing went through the driver's node: the head's store never held it.
    assert not _copies(c.head_node.store_root, ref.id.hex())


def test_driver_gets_an_object_stored_on_another_node(shared):
    a = shared.a
    arr = actorium.get(make_array.options(scheduling_strategy=on(a)).remote(MIB, 3.0))
    assert arr.shape == (MIB,) and float(arr[0]) == 3.0 and not arr.flags.writeable


def test_put_on_the_driver_is_read_by_a_task_on_another_node(shared):
    a = shared.a
    ref = actorium.put(np.arange(MIB, dtype=np.float64))
    total, _, _ = actorium.get(summarize.options(scheduling_strategy=on(a)).remote(ref))
    assert total == float(np.arange(MIB, dtype=np.float64).sum())


def test_wait_fetch_local_brings_the_object_to_the_driver_node(shared):
    c, a = shared.cluster, shared.a
    ref = make_array.options(scheduling_strategy=on(a)).remote(MIB, 1.0)
    ready, _ = actorium.wait([ref], timeout=30, fetch_local=False)
    assert ready and not _copies(c.head_node.store_root, ref.id.hex())
    ready, _ = actorium.wait([ref], timeout=30, fetch_local=True)
    assert ready and _copies(c.head_node.store_root, ref.id.hex())


def test_freeing_the_object_removes_remote_copies(shared):
    a, b = shared.a, shared.b
    ref = make_array.options(scheduling_strategy=on(a)).remote(MIB, 1.0)
    actorium.get(summarize.options(scheduling_strategy=on(b)).remote(ref))
    oid = ref.id.hex()
    assert _copies(a.store_root, oid) and _copies(b.store_root, oid)
    del ref
    from tests_helpers import wait_until
    assert wait_until(lambda: not _copies(a.store_root, oid) and not _copies(b.store_root, oid))


def test_object_larger_than_the_pull_window_arrives_intact(shared):
    from actorium.raylet import object_pull
    n = (object_pull.CHUNK * (object_pull.WINDOW + 2)) // 8 + 12345  # not a chunk multiple
    ref = make_array.options(scheduling_strategy=on(shared.a)).remote(n, 1.5)
    total, nbytes, _ = actorium.get(
        summarize.options(scheduling_strategy=on(shared.b)).remote(ref), timeout=120)
    assert nbytes == n * 8 and total == 1.5 * n
