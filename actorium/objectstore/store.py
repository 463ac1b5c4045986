"""Node-local shared-memory object store: payload files indexed by LMDB.

Layout under ``root`` (normally ``/dev/shm/actorium/<cluster>/<node>``)::

    index/      LMDB environment: one record per object plus usage counters
    objects/    one payload file per object in shared memory, named by hex id

and, created on first spill, ``spill_dir`` on disk holding spilled payloads
under the same names.

Invariants:
  * ``used`` (bytes of records in state "shm") never exceeds ``capacity`` at a
    committed state; files still being written under temporary names are not
    counted, so tmpfs may briefly hold more than ``capacity``.
  * Every rename into a final name and every unlink of a final name happens
    inside an LMDB write transaction, which serialises them node-wide. A
    reader that looked an object up in an older snapshot may therefore find
    the file moved; it retries, trying the shm name and then the spill name.
  * A spill or restore copies before it unlinks, so a recorded object always
    has at least one complete payload file.
  * Views returned by ``get`` are read-only mappings that stay valid after the
    object is deleted, evicted or spilled (the mapping pins the inode).

Every process opens its own LMDB environment, and must never use one opened
by another process: each operation checks ``os.getpid()`` and, in a forked
child, reopens the index lazily. Store locks are held across ``fork`` so that
no transaction is in flight in the instant the child is copied.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import threading
import time
import weakref

from .errors import ObjectStoreFullError
from .index import SHM, SPILLED, Index, Record, open_index
from .payload import byte_views, map_readonly, move, remove_quietly, temp_path, write_temp

_MAX_ID_BYTES = 100  # hex names must stay well inside NAME_MAX (255) with temp affixes

# Live stores of this process. Their locks are taken before fork so the child
# is never copied in the middle of a transaction (whose reader slot or write
# mutex it would then inherit), and each child store gets fresh locks.
_LIVE_STORES: "weakref.WeakSet[ObjectStore]" = weakref.WeakSet()
_held_across_fork: list = []


def _before_fork() -> None:
    for store in list(_LIVE_STORES):
        store._lock.acquire()
        _held_across_fork.append(store)


def _after_fork_in_parent() -> None:
    while _held_across_fork:
        _held_across_fork.pop()._lock.release()


def _after_fork_in_child() -> None:
    while _held_across_fork:
        _held_across_fork.pop()._lock = threading.RLock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


class ObjectStore:
    """One process's handle on a node's object store.

    All processes of a node must pass the same ``root``, ``capacity`` and
    ``spill_dir``. ``create=True`` (done once, by the raylet) creates the
    directories and the index; other processes open with ``create=False``.
    Safe for concurrent use by many processes and by many threads of one
    process.
    """

    INDEX_MAP_SIZE = 64 * 1024 * 1024
    MAX_READERS = 512
    # Writing the access time on every get would turn reads into write
    # transactions; LRU order only needs second-level resolution.
    ATIME_WRITE_INTERVAL = 1.0
    # How often get retries when a concurrent spill/restore/delete moved the file
    # between its index lookup and its open.
    MAP_RETRIES = 20

    def __init__(self, root: str, capacity: int, spill_dir: str | None = None,
                 create: bool = False):
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.root = os.path.abspath(root)
        self.capacity = int(capacity)
        self.spill_dir = os.path.abspath(spill_dir) if spill_dir is not None else None
        self._index_dir = os.path.join(self.root, "index")
        self._objects_dir = os.path.join(self.root, "objects")
        if create:
            os.makedirs(self._objects_dir, exist_ok=True)
        self._lock = threading.RLock()
        self._closed = False
        self._index = self._open_index(create)
        _LIVE_STORES.add(self)

    def put(self, object_id: bytes, parts: list, *, owner: bytes = b"",
            pinned: bool = True) -> int:
        """Store the concatenation of the buffer-like ``parts``; return its size.

        ``pinned=True`` marks a primary copy: under memory pressure it is
        spilled to ``spill_dir`` rather than dropped. ``pinned=False`` marks a
        secondary copy that may be evicted. Putting an existing id is a no-op
        returning the existing size. Raises ``ObjectStoreFullError`` when the
        object fits neither in shared memory nor on disk; no file and no record
        of it is left behind in that case.
        """
        object_id = _check_id(object_id)
        views = byte_views(parts)
        size = sum(view.nbytes for view in views)
        existing = self._lookup(object_id)
        if existing is not None:
            return existing.size
        # An object that can never fit in shared memory goes straight to disk.
        oversized = size > self.capacity
        if oversized and self.spill_dir is None:
            raise self._full(size, "the object is larger than the whole capacity and no "
                                   "spill directory is configured")
        tmp = self._write_payload(object_id, views, size, oversized)
        return self._commit(object_id, tmp, size, oversized, owner, pinned)

    def open_incoming(self, object_id: bytes, size: int) -> tuple[int, str]:
        """A temporary payload file of ``size`` bytes to fill in place (an object
        arriving from another node, chunk by chunk); finish with ``commit_incoming``,
        or close the fd and ``discard_incoming`` the path."""
        path = temp_path(self._objects_dir, _check_id(object_id).hex())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        except OSError:
            os.close(fd)
            remove_quietly(path)
            raise
        return fd, path

    def commit_incoming(self, object_id: bytes, path: str, size: int, *,
                        pinned: bool = False) -> int:
        """Index a payload written with ``open_incoming`` (a secondary copy by default),
        making room as ``put`` does. On failure the file is removed and the error raised."""
        return self._commit(_check_id(object_id), path, size, False, b"", pinned)

    @staticmethod
    def discard_incoming(path: str) -> None:
        remove_quietly(path)

    def _commit(self, object_id: bytes, tmp: str, size: int, oversized: bool, owner,
                pinned: bool) -> int:
        """Rename a written payload into place and record it, in one index transaction."""
        try:
            with self._session() as index, self._writing(index) as txn:
                old = index.get(txn, object_id)
                if old is not None:
                    return old.size
                reason = None if oversized else self._make_room(index, txn, size, object_id)
                if reason is None:
                    final = self._spill_path(object_id) if oversized else self._shm_path(object_id)
                    os.rename(tmp, final)
                    tmp = None
                    now = time.time()
                    index.set(txn, object_id, Record(size, bytes(owner), now, now,
                                                     SPILLED if oversized else SHM,
                                                     bool(pinned)), None)
                used = index.used(txn)
            # Raised after the transaction commits: evictions and spills already
            # done while making room are valid on their own and stay recorded.
            if reason is not None:
                raise self._full(size, reason, used)
            return size
        finally:
            if tmp is not None:
                remove_quietly(tmp)

    def get(self, object_id: bytes, populate: bool = False) -> memoryview | None:
        """A read-only, zero-copy view of the object's payload; None if absent.
        ``populate``: map all pages at once (see ``payload.map_readonly``).

        A spilled object is first restored into shared memory (making room as
        ``put`` does); if there is no room it is mapped from the spill file.
        """
        object_id = _check_id(object_id)
        for attempt in range(self.MAP_RETRIES):
            record = self._lookup(object_id)
            if record is None:
                return None
            if record.state == SPILLED:
                self._restore(object_id)
            view = map_readonly(self._shm_path(object_id), populate)
            if view is None and self.spill_dir is not None:
                view = map_readonly(self._spill_path(object_id), populate)
            if view is not None:
                self._touch(object_id, record)
                return view
            time.sleep(0.001 * attempt)
        if self._lookup(object_id) is None:
            return None
        raise FileNotFoundError(f"object {object_id.hex()} is indexed but its payload file "
                                f"is missing from {self._objects_dir!r} and the spill dir")

    def open_payload(self, object_id: bytes) -> int | None:
        """A read-only fd of the object's payload file (the caller closes it), for
        ``os.sendfile``; None if absent. A spilled object is restored first, as by ``get``;
        the fd stays valid if the object is deleted meanwhile."""
        object_id = _check_id(object_id)
        record = self._lookup(object_id)
        if record is None:
            return None
        if record.state == SPILLED:
            self._restore(object_id)
        paths = [self._shm_path(object_id)]
        if self.spill_dir is not None:
            paths.append(self._spill_path(object_id))
        for path in paths:
            try:
                return os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
        return None

    def contains(self, object_id: bytes) -> bool:
        return self._lookup(_check_id(object_id)) is not None

    def delete(self, object_ids: list[bytes]) -> None:
        """Remove the objects' payload files and records; unknown ids are ignored.

        Views already returned by ``get`` remain readable.
        """
        ids = [_check_id(object_id) for object_id in object_ids]
        with self._session() as index, self._writing(index) as txn:
            for object_id in ids:
                record = index.get(txn, object_id)
                if record is None:
                    continue
                # Both names are removed whatever the state says, in case a
                # failed spill or restore left a second copy behind.
                remove_quietly(self._shm_path(object_id))
                if self.spill_dir is not None:
                    remove_quietly(self._spill_path(object_id))
                index.remove(txn, object_id, record)

    def usage(self) -> dict:
        """``used``/``spilled`` bytes, ``capacity``, ``num_objects`` (all) and ``num_spilled``."""
        with self._session() as index, index.begin() as txn:
            counters = index.counters(txn)
        return {"used": counters["used"], "capacity": self.capacity,
                "spilled": counters["spilled"], "num_objects": counters["num_objects"],
                "num_spilled": counters["num_spilled"]}

    def list(self) -> list[dict]:
        """One dict per object: object_id, size, state, owner (hex), pinned, created, last_access."""
        with self._session() as index, index.begin() as txn:
            return [{"object_id": object_id.hex(), "size": record.size, "state": record.state,
                     "owner": record.owner.hex(), "pinned": record.pinned,
                     "created": record.created, "last_access": record.atime}
                    for object_id, record in index.items(txn)]

    def close(self) -> None:
        """Release this process's index handle; the store's data is untouched."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._index.release()
        _LIVE_STORES.discard(self)

    def __enter__(self) -> "ObjectStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @staticmethod
    def destroy(root: str, spill_dir: str | None = None) -> None:
        """Remove the store's directory tree and spill directory (node shutdown).

        Every process should have closed its handle first; mappings still held
        by readers stay valid until they are released.
        """
        shutil.rmtree(root, ignore_errors=True)
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)

    def _open_index(self, create: bool) -> Index:
        return open_index(self._index_dir, create=create, map_size=self.INDEX_MAP_SIZE,
                          max_readers=self.MAX_READERS)

    @contextlib.contextmanager
    def _session(self):
        """Hold the thread lock and yield an index opened by *this* process."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"ObjectStore at {self.root!r} is closed")
            if self._index.pid != os.getpid():
                # Forked child: the inherited environment is unusable here.
                self._index = self._open_index(create=False)
            yield self._index

    @staticmethod
    @contextlib.contextmanager
    def _writing(index: Index):
        """A write transaction committed on normal exit (including return), aborted on error."""
        txn = index.begin(write=True)
        try:
            yield txn
        except BaseException:
            txn.abort()
            raise
        txn.commit()

    def _lookup(self, object_id: bytes) -> Record | None:
        with self._session() as index, index.begin() as txn:
            return index.get(txn, object_id)

    def _write_payload(self, object_id: bytes, views: list, size: int, to_disk: bool) -> str:
        """Write the payload under a temporary name in its target directory."""
        try:
            if to_disk:
                os.makedirs(self.spill_dir, exist_ok=True)
                return write_temp(self.spill_dir, object_id.hex(), views)
            return write_temp(self._objects_dir, object_id.hex(), views)
        except OSError as exc:
            if to_disk:
                raise self._full(size, f"spilling to {self.spill_dir!r} failed: {exc}") from exc
            if exc.errno == errno.ENOSPC:
                raise self._full(size, f"shared memory itself is out of space: {exc}") from exc
            raise

    def _make_room(self, index: Index, txn, need: int, exclude: bytes) -> str | None:
        """Evict unpinned LRU copies, then spill pinned LRU ones, until ``need`` bytes fit.

        Returns None on success, else the reason it could not make room. Never
        touches ``exclude``. Runs inside the caller's write transaction.
        """
        used = index.used(txn)
        if used + need <= self.capacity:
            return None
        if need > self.capacity:
            return "the object is larger than the whole capacity"
        resident = [(object_id, record) for object_id, record in index.items(txn)
                    if record.state == SHM and object_id != exclude]
        resident.sort(key=lambda item: (item[1].atime, item[1].created))
        unpinned = [item for item in resident if not item[1].pinned]
        pinned = [item for item in resident if item[1].pinned]
        if self.spill_dir is None:
            # Check before evicting anything, so a doomed put drops no copies.
            if used - sum(record.size for _, record in unpinned) + need > self.capacity:
                return ("no spill directory is configured and evicting every unpinned "
                        "copy would not free enough space")
        for object_id, record in unpinned:
            remove_quietly(self._shm_path(object_id))
            index.remove(txn, object_id, record)
            used -= record.size
            if used + need <= self.capacity:
                return None
        for object_id, record in pinned:
            try:
                os.makedirs(self.spill_dir, exist_ok=True)
                move(self._shm_path(object_id), self._spill_path(object_id))
            except OSError as exc:
                return f"spilling to {self.spill_dir!r} failed: {exc}"
            index.set(txn, object_id, dataclasses.replace(record, state=SPILLED), record)
            used -= record.size
            if used + need <= self.capacity:
                return None
        return "spilling every pinned object did not free enough space"

    def _restore(self, object_id: bytes) -> None:
        """Best effort: bring a spilled object back into shared memory."""
        with self._session() as index, self._writing(index) as txn:
            record = index.get(txn, object_id)
            # Re-checked under the write lock: another process may have restored
            # or deleted it since our lookup.
            if record is None or record.state != SPILLED:
                return
            if self._make_room(index, txn, record.size, object_id) is not None:
                return
            try:
                move(self._spill_path(object_id), self._shm_path(object_id))
            except OSError:
                # No room on tmpfs after all, or the file vanished: the caller
                # then maps the spill file (or retries its lookup).
                return
            index.set(txn, object_id,
                      dataclasses.replace(record, state=SHM, atime=time.time()), record)

    def _touch(self, object_id: bytes, seen: Record) -> None:
        now = time.time()
        if now - seen.atime < self.ATIME_WRITE_INTERVAL:
            return
        with self._session() as index, self._writing(index) as txn:
            record = index.get(txn, object_id)
            if record is not None:
                index.set(txn, object_id, dataclasses.replace(record, atime=now), record)

    def _full(self, size: int, reason: str, used: int | None = None) -> ObjectStoreFullError:
        if used is None:
            used = self.usage()["used"]
        return ObjectStoreFullError(self.capacity, used, size, reason)

    def _shm_path(self, object_id: bytes) -> str:
        return os.path.join(self._objects_dir, object_id.hex())

    def _spill_path(self, object_id: bytes) -> str:
        return os.path.join(self.spill_dir, object_id.hex())


def _check_id(object_id) -> bytes:
    object_id = bytes(object_id)
    if not 0 < len(object_id) <= _MAX_ID_BYTES:
        raise ValueError(f"object id must be 1..{_MAX_ID_BYTES} bytes, got {len(object_id)}")
    return object_id
