"""The gcs's durable store for actorium.durable: step journals, actor checkpoints with
the replies of the calls they cover, and append-only session event logs.

It is a separate LMDB environment (``<session>/gcs/durable``) opened with
``sync=True``: every write transaction is fsync'd before the gcs answers, so a record a
caller was told about survives a crash of any process, the gcs included. Being separate
from the control tables, a journal that fills its map cannot stop actor bookkeeping;
its size is ``ACTORIUM_DURABLE_STORE_BYTES`` (default 1 GiB, sparse on disk).

``ACTORIUM_DURABLE_STORE_DIR`` puts it elsewhere, e.g. on a disk that outlives the
cluster: a session re-created in a later cluster then finds its checkpoint, journal and
log. If the store cannot be opened, the gcs still runs and answers every durable request
with that reason, so the rest of the cluster keeps working.

Keys are plain bytes built here, so any process that can reach the gcs can read any
record: (scope, request, seq) for steps, scope for checkpoints, (log key, index) for
events. The gcs never unpickles a value; it only stores the blobs it is given.
"""
from __future__ import annotations

import os
import pickle
import struct
import time

import lmdb
import msgpack

from actorium.core.wire import protocol
from actorium.durable import journal_state as js

DEFAULT_MAP_SIZE = 1 << 30
RECENT_REPLIES = 32  # replies kept per checkpointed actor for re-delivered calls
# A checkpointed request's journal (and a session's dedup records for it) are deleted
# once this many later requests of the same actor were checkpointed: by then it can no
# longer be re-delivered (callers re-send cut-off calls as soon as the actor is back).
JOURNAL_WINDOW = 256
_u16 = struct.Struct(">H")
_u32 = struct.Struct(">I")
_u64 = struct.Struct(">Q")


class DurableStoreError(RuntimeError):
    """The store refused a write (full or unwritable); the message says which."""


def _scoped(scope: bytes, request: bytes = b"") -> bytes:
    return _u16.pack(len(scope)) + scope + request


def _pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpack(data):
    return msgpack.unpackb(data, raw=False)


class DurableStore:
    TABLES = (b"journal", b"checkpoints", b"replies", b"events", b"event_dedup", b"meta")

    def __init__(self, path: str, map_size: int | None = None):
        os.makedirs(path, exist_ok=True)
        self.map_size = map_size or int(os.environ.get("ACTORIUM_DURABLE_STORE_BYTES",
                                                       DEFAULT_MAP_SIZE))
        self.env = lmdb.open(path, map_size=self.map_size, max_dbs=len(self.TABLES) + 1,
                             subdir=True, sync=True, metasync=True)
        self.db = {n.decode(): self.env.open_db(n) for n in self.TABLES}
        self.next_event: dict[str, int] = {}  # per log: the next index, once known

    def close(self) -> None:
        self.env.close()

    # -- replication (actorium/gcs/durable_replica.py) ------------------------------------
    def seq(self) -> int:
        """How many replicated batches this store holds (0: none): copies compare by it."""
        raw = self._read(lambda txn, c: txn.get(b"seq", db=self.db["meta"]))
        return _u64.unpack(raw)[0] if raw is not None else 0

    def t_set_seq(self, txn, seq: int) -> None:
        txn.put(b"seq", _u64.pack(seq), db=self.db["meta"])

    def copy_bytes(self) -> tuple[int, bytes]:
        """A consistent compacted copy of the whole store, as one LMDB file, and its seq."""
        import tempfile
        with tempfile.TemporaryDirectory(prefix="actorium-durable-copy-") as tmp:
            with self.env.begin() as txn:  # the seq of the snapshot the copy is taken from
                raw = txn.get(b"seq", db=self.db["meta"])
                self.env.copy(tmp, compact=True, txn=txn)
            with open(os.path.join(tmp, "data.mdb"), "rb") as f:
                return (_u64.unpack(raw)[0] if raw is not None else 0), f.read()

    @staticmethod
    def install_copy(path: str, data: bytes) -> None:
        """Replace the (closed) store at ``path`` by a copy from ``copy_bytes``, fsync'd,
        atomically: a crash leaves the old store or the new one, never a mix."""
        os.makedirs(path, exist_ok=True)
        tmp = os.path.join(path, "data.mdb.incoming")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for stale in ("lock.mdb",):
            try:
                os.unlink(os.path.join(path, stale))
            except FileNotFoundError:
                pass
        os.replace(tmp, os.path.join(path, "data.mdb"))
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write(self, fn):
        """Run ``fn(txn, counters)`` in one write transaction; a failure aborts all of it.
        ``counters`` collects the event logs' next indexes, published only on commit."""
        counters: dict[str, int] = {}
        try:
            with self.env.begin(write=True) as txn:
                out = fn(txn, counters)
        except lmdb.MapFullError:
            raise DurableStoreError(
                f"the durable store is full ({self.map_size} bytes; raise "
                f"ACTORIUM_DURABLE_STORE_BYTES); nothing was written") from None
        except lmdb.Error as exc:
            raise DurableStoreError(f"the durable store refused the write: {exc}; "
                                    f"nothing was written") from None
        self.next_event.update(counters)
        return out

    # -- journal ----------------------------------------------------------------
    def journal_begin(self, scope, request, seq, name, idempotent, attempt=b"") -> dict:
        return self._write(lambda txn, c: self.t_journal_begin(
            txn, c, scope, request, seq, name, idempotent, (), attempt))

    def t_journal_begin(self, txn, counters, scope, request, seq, name, idempotent,
                        events=(), attempt=b"") -> dict:
        for log_key, dedup, blob in events:
            self._append(txn, counters, log_key, blob, dedup)
        key = _scoped(scope, request) + _u32.pack(seq)
        raw = txn.get(key, db=self.db["journal"])
        record = _unpack(raw) if raw is not None else None
        action, new = js.begin(record, name, idempotent, attempt)
        if new is not None:
            txn.put(key, _pack(new), db=self.db["journal"])
        out = {"action": action.value, "attempts": (new or record or {}).get("attempts", 0)}
        if action is js.Action.REPLAY:
            out.update(ok=record["ok"], value=record["value"])
        elif action is js.Action.MISMATCH:
            out["name"] = record["name"]
        return out

    def journal_commit(self, scope, request, seq, ok, value, event_key) -> bool:
        return self._write(lambda txn, c: self.t_journal_commit(
            txn, c, scope, request, seq, ok, value, event_key))

    def t_journal_commit(self, txn, counters, scope, request, seq, ok, value, event_key):
        key = _scoped(scope, request) + _u32.pack(seq)
        raw = txn.get(key, db=self.db["journal"])
        record = _unpack(raw) if raw is not None else None
        new = js.commit(record, ok, value)
        if new is None:
            return False
        txn.put(key, _pack(new), db=self.db["journal"])
        if event_key:
            self._append(txn, counters, event_key, _event_blob(
                {"kind": "step", "name": new["name"], "seq": seq,
                 "request": request.hex(), "ok": bool(ok)}), b"s" + key)
        return True

    def journal_records(self, scope: bytes, request: bytes) -> list[dict]:
        """Every step record of one request, in step order (for tests and tools)."""
        prefix = _scoped(scope, request)
        out = []
        with self.env.begin(db=self.db["journal"]) as txn:
            cur = txn.cursor()
            if cur.set_range(prefix):
                for k, v in cur:
                    if not bytes(k).startswith(prefix):
                        break
                    out.append(_unpack(v))
        return out

    # -- checkpoints and cached replies ------------------------------------------------
    def checkpoint_put(self, scope, state, replies, events) -> bool:
        return self._write(lambda txn, c: self.t_checkpoint_put(
            txn, c, scope, state, replies, events))

    def t_checkpoint_put(self, txn, counters, scope, state, replies, events) -> bool:
        """One transaction: the state (None: unchanged), the replies of the calls it
        covers ([request, reply]; reply None when it cannot be cached), their events."""
        raw = txn.get(b"r" + scope, db=self.db["checkpoints"])
        recent = _unpack(raw) if raw is not None else []
        for request, reply in replies:
            if reply is None:
                continue
            txn.put(_scoped(scope, request), _pack(reply), db=self.db["replies"])
            recent.append(request)
        for old in recent[:-RECENT_REPLIES]:
            txn.delete(_scoped(scope, old), db=self.db["replies"])
        recent = recent[-RECENT_REPLIES:]
        txn.put(b"r" + scope, _pack(recent), db=self.db["checkpoints"])
        self._retire(txn, scope, [request for request, _ in replies])
        if state is not None:
            txn.put(b"s" + scope, state, db=self.db["checkpoints"])
        for key, dedup, blob in events:
            self._append(txn, counters, key, blob, dedup)
        return True

    def _retire(self, txn, scope: bytes, requests: list) -> None:
        """Remember ``requests`` as checkpointed; forget the journals of those that fell
        out of the last JOURNAL_WINDOW. The event log itself is never trimmed."""
        if not requests:
            return
        raw = txn.get(b"g" + scope, db=self.db["checkpoints"])
        done = (_unpack(raw) if raw is not None else []) + list(requests)
        for old in done[:-JOURNAL_WINDOW]:
            self._delete_prefix(txn, "journal", _scoped(scope, old))
            if scope.startswith(b"session:"):
                log = _scoped(scope[len(b"session:"):])
                for tag in (b"q" + old, b"r" + old, b"s" + _scoped(scope, old),
                            b"e" + scope + b"|" + old):
                    self._delete_prefix(txn, "event_dedup", log + tag)
        txn.put(b"g" + scope, _pack(done[-JOURNAL_WINDOW:]), db=self.db["checkpoints"])

    def _delete_prefix(self, txn, table: str, prefix: bytes) -> None:
        cur = txn.cursor(db=self.db[table])
        if cur.set_range(prefix):
            while bytes(cur.key()).startswith(prefix) and cur.delete():
                pass

    def _read(self, fn):
        with self.env.begin() as txn:
            return fn(txn, None)

    def checkpoint_get(self, scope):
        return self._read(lambda txn, c: self.t_checkpoint_get(txn, c, scope))

    def t_checkpoint_get(self, txn, _counters, scope):
        state = txn.get(b"s" + scope, db=self.db["checkpoints"])
        if state is None:
            return None
        raw = txn.get(b"r" + scope, db=self.db["checkpoints"])
        return {"state": bytes(state), "recent": _unpack(raw) if raw is not None else []}

    def reply_get(self, scope, request):
        return self._read(lambda txn, c: self.t_reply_get(txn, c, scope, request))

    def t_reply_get(self, txn, _counters, scope, request):
        raw = txn.get(_scoped(scope, request), db=self.db["replies"])
        return _unpack(raw) if raw is not None else None

    # -- event logs ---------------------------------------------------------------------
    def _event_key(self, key: str, index: int) -> bytes:
        return _scoped(key.encode()) + _u64.pack(index)

    def _next_index(self, txn, counters: dict, key: str) -> int:
        n = counters.get(key, self.next_event.get(key))
        if n is None:
            n = 0
            prefix = _scoped(key.encode())
            cur = txn.cursor(db=self.db["events"])
            moved = cur.prev() if cur.set_range(prefix + b"\xff" * 8) else cur.last()
            if moved:
                k = bytes(cur.key())
                if k.startswith(prefix) and len(k) == len(prefix) + 8:
                    n = _u64.unpack(k[-8:])[0] + 1
        return n

    def _append(self, txn, counters: dict, key: str, value: bytes, dedup: bytes) -> int:
        dkey = _scoped(key.encode(), dedup) if dedup else b""
        if dkey:
            seen = txn.get(dkey, db=self.db["event_dedup"])
            if seen is not None:
                return _u64.unpack(seen)[0]
        index = self._next_index(txn, counters, key)
        txn.put(self._event_key(key, index), value, db=self.db["events"])
        if dkey:
            txn.put(dkey, _u64.pack(index), db=self.db["event_dedup"])
        counters[key] = index + 1
        return index

    def event_append(self, key: str, value: bytes, dedup: bytes) -> int:
        return self._write(lambda txn, counters: self._append(txn, counters, key, value, dedup))

    def event_range(self, key: str, start: int, end: int) -> list:
        return self._read(lambda txn, c: self.t_event_range(txn, c, key, start, end))

    def event_keys(self, limit: int = 1000) -> list:
        """[key, number of events] of each event log (the dashboard's sessions), at most
        ``limit``: one cursor step per log, not per event."""
        out = []
        with self.env.begin(db=self.db["events"]) as txn:
            cur = txn.cursor()
            ok = cur.first()
            while ok and len(out) < limit:
                k = bytes(cur.key())
                n = _u16.unpack(k[:2])[0]
                prefix = k[:2 + n]
                if cur.set_range(prefix + b"\xff" * 8):
                    cur.prev()
                else:
                    cur.last()
                last = bytes(cur.key())
                out.append([prefix[2:].decode(errors="replace"), _u64.unpack(last[-8:])[0] + 1])
                ok = cur.next()
        return out

    def t_event_range(self, txn, _counters, key: str, start: int, end: int) -> list:
        out = []
        stop = self._event_key(key, end) if end >= 0 else None
        prefix = _scoped(key.encode())
        cur = txn.cursor(db=self.db["events"])
        if cur.set_range(self._event_key(key, max(0, start))):
            for k, v in cur:
                k = bytes(k)
                if not k.startswith(prefix) or len(k) != len(prefix) + 8 or \
                        (stop is not None and k >= stop):
                    break
                out.append(bytes(v))
        return out

    # -- requests as operations on a transaction ----------------------------------------
    def operations(self) -> dict:
        """Message class -> (writes, fn(txn, counters, msg)): what each durable request
        does inside a transaction, so the service can run many in one."""
        p = protocol
        return {
            p.JournalBegin: (True, lambda t, c, m: self.t_journal_begin(
                t, c, m.scope, m.request, m.seq, m.name, m.idempotent, m.events,
                m.attempt)),
            p.JournalCommit: (True, lambda t, c, m: self.t_journal_commit(
                t, c, m.scope, m.request, m.seq, m.ok, m.value, m.event_key)),
            p.CheckpointPut: (True, lambda t, c, m: self.t_checkpoint_put(
                t, c, m.scope, m.state, m.replies, m.events)),
            p.EventAppend: (True, lambda t, c, m: self._append(t, c, m.key, m.value, m.dedup)),
            p.CheckpointGet: (False, lambda t, c, m: self.t_checkpoint_get(t, c, m.scope)),
            p.ReplyGet: (False, lambda t, c, m: self.t_reply_get(t, c, m.scope, m.request)),
            p.EventRange: (False, lambda t, c, m: self.t_event_range(
                t, c, m.key, m.start, m.end)),
        }


def open_store(default_path: str) -> tuple[DurableStore | None, str]:
    """The gcs's store at ``ACTORIUM_DURABLE_STORE_DIR`` or ``default_path``; or None and
    why it could not be opened."""
    path = os.environ.get("ACTORIUM_DURABLE_STORE_DIR") or default_path
    try:
        return DurableStore(path), ""
    except Exception as exc:
        return None, f"the durable store at {path} is unavailable: {type(exc).__name__}: {exc}"


def _event_blob(event: dict) -> bytes:
    """A runtime event as a serialized value blob (``P`` + pickle of plain data), the
    same format user events arrive in, so readers decode every event alike."""
    return b"P" + pickle.dumps(event, protocol=5)
