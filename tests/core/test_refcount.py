"""Reference counting: store copies are freed when the last reference is gone."""
from __future__ import annotations

import gc
import time

import numpy as np

import actorium


def _store_usage():
    from actorium.core.object_ref import _worker
    return _worker.store.usage()


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_dropping_the_last_ref_frees_the_store_copy(cluster):
    baseline = _store_usage()["used"]
    ref = actorium.put(np.zeros(4 << 20, dtype=np.uint8))
    assert _store_usage()["used"] >= baseline + (4 << 20)
    del ref
    gc.collect()
    assert _wait_for(lambda: _store_usage()["used"] <= baseline)


def test_task_results_are_freed_when_their_refs_die(cluster):
    @actorium.remote
    def big():
        return np.zeros(2 << 20, dtype=np.uint8)

    baseline = _store_usage()["used"]
    refs = [big.remote() for _ in range(4)]
    actorium.get(refs)
    assert _store_usage()["used"] >= baseline + (8 << 20)
    del refs
    gc.collect()
    assert _wait_for(lambda: _store_usage()["used"] <= baseline)
