"""Many processes on one node, and fork safety."""
import multiprocessing
import os

from actorium.objectstore import ObjectStore

WORKERS = 4
PER_WORKER = 40


def _payload(worker, i):
    return bytes([worker]) * (1000 + 37 * i)


def _writer(root, spill, capacity, worker):
    """Runs in a spawned process: opens its own handle and puts PER_WORKER objects."""
    store = ObjectStore(root, capacity, spill)
    try:
        for i in range(PER_WORKER):
            object_id = f"w{worker}-{i}".encode()
            store.put(object_id, [_payload(worker, i)])
            assert bytes(store.get(object_id)) == _payload(worker, i)
    finally:
        store.close()


def _run_writers(root, spill, capacity):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, spill, capacity, w)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    return [proc.exitcode for proc in procs]


def _expected():
    return {f"w{w}-{i}".encode(): _payload(w, i) for w in range(WORKERS) for i in range(PER_WORKER)}


def test_concurrent_writers_from_four_processes_all_succeed(paths, make_store):
    store = make_store(capacity=1 << 24)
    assert _run_writers(paths[0], paths[1], 1 << 24) == [0] * WORKERS
    expected = _expected()
    usage = store.usage()
    assert usage["num_objects"] == len(expected)
    assert usage["used"] == sum(len(v) for v in expected.values())
    assert usage["spilled"] == 0
    for object_id, payload in expected.items():
        assert bytes(store.get(object_id)) == payload


def test_concurrent_writers_under_spill_pressure_keep_usage_consistent(paths, make_store):
    capacity = 64 * 1024
    store = make_store(capacity=capacity)
    assert _run_writers(paths[0], paths[1], capacity) == [0] * WORKERS
    expected = _expected()
    usage = store.usage()
    assert usage["used"] <= capacity
    assert usage["used"] + usage["spilled"] == sum(len(v) for v in expected.values())
    assert usage["num_objects"] == len(expected)
    in_shm = os.listdir(os.path.join(paths[0], "objects"))
    assert len(in_shm) == usage["num_objects"] - usage["num_spilled"]
    assert len(os.listdir(paths[1])) == usage["num_spilled"]
    assert not [name for name in in_shm + os.listdir(paths[1]) if name.endswith(".tmp")]
    for object_id, payload in expected.items():
        assert bytes(store.get(object_id)) == payload


def test_forked_child_reopens_index_instead_of_reusing_parents(make_store):
    store = make_store()
    store.put(b"before-fork", [b"parent"])
    parent_index = store._index
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's LMDB environment
        status = 1
        try:
            ok = bytes(store.get(b"before-fork")) == b"parent"
            ok = ok and store._index is not parent_index and store._index.pid == os.getpid()
            store.put(b"from-child", [b"child"])
            status = 0 if ok else 2
        finally:
            os.write(write_fd, bytes([status]))
            os._exit(status)
    os.close(write_fd)
    _, wait_status = os.waitpid(pid, 0)
    assert os.read(read_fd, 1) == b"\x00"
    os.close(read_fd)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert store._index is parent_index
    assert bytes(store.get(b"from-child")) == b"child"
