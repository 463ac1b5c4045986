"""LMDB index of the node-local object store.

The index holds one record per object (``o:`` + object id) and four counters
(``m:`` keys). Every change to a record goes through ``Index.set`` or
``Index.remove`` inside the caller's write transaction, which also adjusts the
counters, so the invariant below holds at every committed state:

    used        == sum(size for records in state "shm")
    spilled     == sum(size for records in state "spilled")
    num_objects == number of records
    num_spilled == number of records in state "spilled"

LMDB serialises write transactions across all processes that open the same
environment, so a write transaction doubles as the node-wide lock for every
decision that depends on the counters (admission, eviction, spilling).

Process rules, all enforced here:
  * An environment is used only by the process that opened it: LMDB's lock
    file relies on per-process fcntl locks and a reader table keyed by pid,
    both wrong in a forked child. ``Index.pid`` records the opener.
  * One process opens an environment at most once (LMDB forbids a second open,
    because closing either handle would drop the other's fcntl locks), so
    ``open_index`` hands out one shared, reference-counted ``Index`` per index
    directory.
  * In a forked child the inherited environment is closed *before* a new one
    is opened. That order matters: the child holds no fcntl locks yet, so the
    close cannot release any, and because callers hold their store locks
    across fork (see store.py) no transaction of the parent is open in the
    child, so the close cannot disturb the parent's reader-table slots.
"""
from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from typing import Iterator

import lmdb
import msgpack

SHM = "shm"
SPILLED = "spilled"

_RECORD_PREFIX = b"o:"
_COUNTERS = ("used", "spilled", "num_objects", "num_spilled")
_COUNTER_KEYS = {name: b"m:" + name.encode() for name in _COUNTERS}
_U64 = struct.Struct("<Q")

# One Index per index directory in this process, keyed by the directory's
# (st_dev, st_ino) so a store destroyed and re-created at the same path is a
# different key.
_registry: dict[tuple, "Index"] = {}
_registry_lock = threading.Lock()


def _before_fork() -> None:
    _registry_lock.acquire()


def _after_fork_in_parent() -> None:
    _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


def open_index(path: str, *, create: bool, map_size: int, max_readers: int) -> "Index":
    """This process's shared ``Index`` for ``path``; pair every call with ``release()``.

    ``create=True`` creates the environment and zeroes the counters if they are
    absent; otherwise the environment must already exist.
    """
    if create:
        os.makedirs(path, exist_ok=True)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"object store index not found at {path!r}; the node's "
                                "store must be created first (create=True)") from None
    key = (st.st_dev, st.st_ino)
    with _registry_lock:
        index = _registry.get(key)
        if index is not None and index.pid != os.getpid():
            index.env.close()  # inherited through fork; see the module docstring
            index = None
        if index is None:
            index = Index(path, key, map_size=map_size, max_readers=max_readers)
            _registry[key] = index
        if create:
            index._init_counters()
        index.refs += 1
        return index


@dataclass
class Record:
    """Metadata of one object. ``pinned`` marks a primary copy (spilled, never evicted)."""

    size: int
    owner: bytes
    created: float
    atime: float
    state: str
    pinned: bool

    def pack(self) -> bytes:
        return msgpack.packb(
            [self.size, self.owner, self.created, self.atime, self.state, self.pinned],
            use_bin_type=True)

    @classmethod
    def unpack(cls, data: bytes) -> "Record":
        size, owner, created, atime, state, pinned = msgpack.unpackb(data, raw=False)
        return cls(size, owner, created, atime, state, pinned)

    def contribution(self) -> dict:
        """This record's share of each counter."""
        in_shm = self.state == SHM
        return {
            "used": self.size if in_shm else 0,
            "spilled": 0 if in_shm else self.size,
            "num_objects": 1,
            "num_spilled": 0 if in_shm else 1,
        }


class Index:
    """A process's handle on the LMDB index; obtain it from ``open_index``."""

    def __init__(self, path: str, key: tuple, *, map_size: int, max_readers: int):
        self.path = path
        self.key = key
        self.pid = os.getpid()
        self.refs = 0
        # sync/metasync are off because the index normally lives on tmpfs, where
        # fsync buys nothing; it is rebuilt from scratch with each node anyway.
        # No spare read transactions: a cached one would keep a reader slot
        # that a forked child must not inherit.
        self.env = lmdb.open(path, map_size=map_size, max_readers=max_readers, lock=True,
                             sync=False, metasync=False, create=False, subdir=True,
                             readahead=False, max_dbs=0, max_spare_txns=0)
        # Free reader slots left by processes that died mid-transaction, so the
        # fixed-size reader table does not fill up over the node's lifetime.
        self.env.reader_check()

    def _init_counters(self) -> None:
        with self.env.begin(write=True) as txn:
            for key in _COUNTER_KEYS.values():
                if txn.get(key) is None:
                    txn.put(key, _U64.pack(0))

    def begin(self, write: bool = False) -> lmdb.Transaction:
        return self.env.begin(write=write)

    def get(self, txn: lmdb.Transaction, object_id: bytes) -> Record | None:
        data = txn.get(_RECORD_PREFIX + object_id)
        return None if data is None else Record.unpack(data)

    def set(self, txn: lmdb.Transaction, object_id: bytes, record: Record,
            old: Record | None) -> None:
        """Store ``record``; ``old`` must be the record currently stored (or None)."""
        delta = record.contribution()
        if old is not None:
            for name, value in old.contribution().items():
                delta[name] -= value
        self._add(txn, delta)
        txn.put(_RECORD_PREFIX + object_id, record.pack())

    def remove(self, txn: lmdb.Transaction, object_id: bytes, old: Record) -> None:
        """Delete the record ``old`` stored under ``object_id``."""
        self._add(txn, {name: -value for name, value in old.contribution().items()})
        txn.delete(_RECORD_PREFIX + object_id)

    def counters(self, txn: lmdb.Transaction) -> dict:
        return {name: self._counter(txn, key) for name, key in _COUNTER_KEYS.items()}

    def used(self, txn: lmdb.Transaction) -> int:
        return self._counter(txn, _COUNTER_KEYS["used"])

    def items(self, txn: lmdb.Transaction) -> Iterator[tuple[bytes, Record]]:
        cursor = txn.cursor()
        if not cursor.set_range(_RECORD_PREFIX):
            return
        for key, value in cursor:
            if not key.startswith(_RECORD_PREFIX):
                break
            yield bytes(key[len(_RECORD_PREFIX):]), Record.unpack(value)

    def release(self) -> None:
        """Drop one reference; the last one in the opening process closes the environment."""
        with _registry_lock:
            self.refs -= 1
            if self.refs > 0 or self.pid != os.getpid():
                return
            if _registry.get(self.key) is self:
                del _registry[self.key]
            self.env.close()

    @staticmethod
    def _counter(txn: lmdb.Transaction, key: bytes) -> int:
        data = txn.get(key)
        return 0 if data is None else _U64.unpack(data)[0]

    def _add(self, txn: lmdb.Transaction, delta: dict) -> None:
        for name, value in delta.items():
            if value:
                key = _COUNTER_KEYS[name]
                txn.put(key, _U64.pack(self._counter(txn, key) + value))
