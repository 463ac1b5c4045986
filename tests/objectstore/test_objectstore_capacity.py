"""Eviction, spilling and ObjectStoreFullError."""
import os
import pickle
import time

import pytest

from actorium.exceptions import ObjectStoreFullError as SharedFullError
from actorium.objectstore import ObjectStore, ObjectStoreFullError


def _files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_unpinned_copies_are_evicted_least_recently_used_first(make_store):
    store = make_store(capacity=300, spill=False)
    store.ATIME_WRITE_INTERVAL = 0  # record every access so LRU order is exact
    for name in (b"a", b"b", b"c"):
        store.put(name, [name * 100], pinned=False)
        time.sleep(0.01)
    store.get(b"a")
    store.put(b"d", [b"d" * 100], pinned=False)
    assert not store.contains(b"b")
    assert all(store.contains(name) for name in (b"a", b"c", b"d"))
    assert store.usage()["used"] == 300


def test_unpinned_copies_are_evicted_before_pinned_are_spilled(make_store):
    store = make_store(capacity=200)
    store.put(b"primary", [b"p" * 100], pinned=True)
    store.put(b"secondary", [b"s" * 100], pinned=False)
    store.put(b"new", [b"n" * 100])
    assert not store.contains(b"secondary")
    assert store.usage()["num_spilled"] == 0


def test_pinned_objects_spill_to_disk_when_full(paths, make_store):
    store = make_store(capacity=300)
    for name in (b"a", b"b", b"c"):
        store.put(name, [name * 100])
        time.sleep(0.01)
    store.put(b"d", [b"d" * 100])
    usage = store.usage()
    assert usage == {"used": 300, "capacity": 300, "spilled": 100,
                     "num_objects": 4, "num_spilled": 1}
    assert _files(paths[1]) == [b"a".hex()]
    assert {e["object_id"]: e["state"] for e in store.list()}[b"a".hex()] == "spilled"


def test_get_restores_spilled_object_transparently(paths, make_store):
    store = make_store(capacity=300)
    for name in (b"a", b"b", b"c", b"d"):
        store.put(name, [name * 100])
        time.sleep(0.01)
    assert bytes(store.get(b"a")) == b"a" * 100
    states = {e["object_id"]: e["state"] for e in store.list()}
    assert states[b"a".hex()] == "shm"
    assert states[b"b".hex()] == "spilled"  # least recently used made room
    assert store.usage()["used"] == 300
    assert _files(paths[1]) == [b"b".hex()]


def test_object_larger_than_capacity_goes_straight_to_spill(paths, make_store):
    store = make_store(capacity=100)
    store.put(b"small", [b"s" * 50])
    assert store.put(b"huge", [b"h" * 1000]) == 1000
    assert store.contains(b"small")
    view = store.get(b"huge")  # cannot be restored: mapped from disk instead
    assert bytes(view) == b"h" * 1000
    assert view.readonly
    assert store.usage()["spilled"] == 1000


def test_full_without_spill_dir_raises_and_leaves_no_partial_file(make_store):
    store = make_store(capacity=100, spill=False)
    store.put(b"a", [b"a" * 80])
    before = store.usage()
    with pytest.raises(ObjectStoreFullError) as info:
        store.put(b"b", [b"b" * 50])
    message = str(info.value)
    assert "capacity=100" in message and "used=80" in message and "requested=50" in message
    assert "spill" in message
    assert not store.contains(b"b")
    assert store.usage() == before
    assert _files(os.path.join(store.root, "objects")) == [b"a".hex()]


def test_full_error_is_also_the_shared_actorium_error(make_store):
    store = make_store(capacity=10, spill=False)
    with pytest.raises(SharedFullError):
        store.put(b"a", [b"a" * 11])


def test_doomed_put_without_spill_dir_evicts_nothing(make_store):
    store = make_store(capacity=100, spill=False)
    store.put(b"pinned", [b"p" * 60])
    store.put(b"copy", [b"c" * 30], pinned=False)
    with pytest.raises(ObjectStoreFullError):
        store.put(b"new", [b"n" * 50])
    assert store.contains(b"copy")


def test_unwritable_spill_dir_raises_full_error(tmp_path):
    # Permission bits do not stop root; a path below a regular file fails for everyone.
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    store = ObjectStore(str(tmp_path / "store"), 100, str(blocker / "spill"), create=True)
    try:
        store.put(b"a", [b"a" * 80])
        with pytest.raises(ObjectStoreFullError, match="spilling"):
            store.put(b"b", [b"b" * 50])
        with pytest.raises(ObjectStoreFullError, match="spilling"):
            store.put(b"huge", [b"h" * 500])
        assert not store.contains(b"b") and not store.contains(b"huge")
        assert store.list()[0]["state"] == "shm"
        assert _files(os.path.join(store.root, "objects")) == [b"a".hex()]
    finally:
        store.close()


def test_full_error_survives_pickling():
    err = pickle.loads(pickle.dumps(ObjectStoreFullError(1, 2, 3, "why")))
    assert (err.capacity, err.used, err.requested, err.reason) == (1, 2, 3, "why")
    assert "capacity=1" in str(err)
