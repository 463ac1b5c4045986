"""Basic put/get/delete behaviour of ObjectStore."""
import os
import pickle
import threading

import numpy as np
import pytest

from actorium.objectstore import ObjectStore


def test_put_get_roundtrip_concatenates_parts(make_store):
    store = make_store()
    parts = [b"head", memoryview(b"-mid-"), pickle.PickleBuffer(bytearray(b"buf")),
             np.arange(4, dtype=np.uint8)]
    size = store.put(b"obj1", parts)
    assert size == 4 + 5 + 3 + 4
    assert bytes(store.get(b"obj1")) == b"head-mid-buf" + bytes([0, 1, 2, 3])


def test_put_of_existing_id_is_a_noop_returning_existing_size(make_store):
    store = make_store()
    assert store.put(b"obj1", [b"first"]) == 5
    assert store.put(b"obj1", [b"a much longer second payload"]) == 5
    assert bytes(store.get(b"obj1")) == b"first"
    assert store.usage()["num_objects"] == 1


def test_get_of_absent_id_returns_none(make_store):
    store = make_store()
    assert store.get(b"missing") is None
    assert not store.contains(b"missing")


def test_delete_returns_usage_to_baseline(make_store):
    store = make_store()
    baseline = store.usage()
    store.put(b"a", [b"x" * 1000])
    store.put(b"b", [b"y" * 500], pinned=False)
    assert store.usage()["used"] == baseline["used"] + 1500
    store.delete([b"a", b"b", b"never-existed"])
    assert store.usage() == baseline
    assert not store.contains(b"a")
    assert os.listdir(os.path.join(store.root, "objects")) == []


def test_empty_payload_roundtrips(make_store):
    store = make_store()
    assert store.put(b"empty", []) == 0
    assert store.put(b"empty2", [b""]) == 0
    assert bytes(store.get(b"empty")) == b""
    assert store.get(b"empty2").readonly


def test_view_is_read_only(make_store):
    store = make_store()
    store.put(b"obj", [b"payload"])
    view = store.get(b"obj")
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1


def test_view_stays_valid_after_delete(make_store):
    store = make_store()
    store.put(b"obj", [b"still here" * 1000])
    view = store.get(b"obj")
    store.delete([b"obj"])
    assert store.get(b"obj") is None
    assert bytes(view) == b"still here" * 1000


def test_list_reports_owner_state_and_pinned(make_store):
    store = make_store()
    store.put(b"\x01\x02", [b"abc"], owner=b"\xff", pinned=False)
    (entry,) = store.list()
    assert entry["object_id"] == "0102"
    assert entry["owner"] == "ff"
    assert entry["size"] == 3
    assert entry["state"] == "shm"
    assert entry["pinned"] is False


def test_second_handle_in_same_process_shares_the_index(make_store):
    writer = make_store()
    writer.put(b"shared", [b"data"])
    reader = make_store(create=False)
    assert bytes(reader.get(b"shared")) == b"data"
    reader.close()  # closing one handle must leave the other usable
    assert bytes(writer.get(b"shared")) == b"data"


def test_open_without_create_fails_when_store_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        ObjectStore(str(tmp_path / "nope"), 1000)


def test_threads_of_one_process_share_a_store(make_store):
    store = make_store(capacity=1 << 24)
    errors = []

    def work(tid):
        try:
            for i in range(50):
                oid = f"t{tid}-{i}".encode()
                store.put(oid, [oid * 10])
                assert bytes(store.get(oid)) == oid * 10
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    usage = store.usage()
    assert usage["num_objects"] == 400
    assert usage["used"] == sum(len(f"t{t}-{i}".encode()) * 10
                                for t in range(8) for i in range(50))


def test_destroy_leaves_no_files(paths, make_store):
    store = make_store(capacity=100)
    store.put(b"a", [b"x" * 80])
    store.put(b"b", [b"y" * 80])
    store.put(b"big", [b"z" * 500])
    assert store.usage()["num_spilled"] >= 2
    store.close()
    ObjectStore.destroy(*paths)
    assert not os.path.exists(paths[0])
    assert not os.path.exists(paths[1])


def test_closed_store_refuses_operations(make_store):
    store = make_store()
    store.close()
    with pytest.raises(RuntimeError):
        store.get(b"a")
