"""Reference counting: store copies are freed when the last reference is gone."""
from __future__ import annotations

import gc

import numpy as np

import actorium
from tests_helpers import store_usage, wait_until




def test_dropping_the_last_ref_frees_the_store_copy(cluster):
    baseline = store_usage()["used"]
    ref = actorium.put(np.zeros(4 << 20, dtype=np.uint8))
    assert store_usage()["used"] >= baseline + (4 << 20)
    del ref
    gc.collect()
    assert wait_until(lambda: store_usage()["used"] <= baseline)


def test_task_results_are_freed_when_their_refs_die(cluster):
    @actorium.remote
    def big():
        return np.zeros(2 << 20, dtype=np.uint8)

    baseline = store_usage()["used"]
    refs = [big.remote() for _ in range(4)]
    actorium.get(refs)
    assert store_usage()["used"] >= baseline + (8 << 20)
    del refs
    gc.collect()
    assert wait_until(lambda: store_usage()["used"] <= baseline)
