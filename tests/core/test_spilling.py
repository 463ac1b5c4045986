"""The object store past its capacity: spilling to disk, and a clear error when it cannot."""
from __future__ import annotations

import numpy as np
import pytest

import actorium
from tests_helpers import store_usage
from actorium.exceptions import ObjectStoreFullError



def test_objects_spill_to_disk_past_capacity_and_come_back():
    actorium.init(num_cpus=1, object_store_memory=64 << 20)
    try:
        refs = [actorium.put(np.full(16 << 20, i, dtype=np.uint8)) for i in range(8)]
        assert store_usage()["spilled"] > 0
        for i, ref in enumerate(refs):
            assert actorium.get(ref)[0] == i
    finally:
        actorium.shutdown()


def test_store_full_without_spill_space_is_a_clear_error():
    actorium.init(num_cpus=1, object_store_memory=64 << 20)
    try:
        from actorium.core.objects.object_ref import _worker
        _worker.store.spill_dir = "/proc/self/cannot-spill-here"
        with pytest.raises(ObjectStoreFullError):
            keep = [actorium.put(np.zeros(16 << 20, dtype=np.uint8)) for _ in range(8)]
            del keep
        assert actorium.get(actorium.put(5)) == 5
    finally:
        actorium.shutdown()
