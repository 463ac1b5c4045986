"""The gcs's durable requests, answered in batches with group commit.

While the gcs drains its socket, durable requests are only queued; after the drain, all
queued writes run in ONE LMDB write transaction (one fsync for the batch), then the
reads, then each request is answered. A lone request costs what it would cost inline;
concurrent sessions, whose requests pile up while the gcs is fsyncing, share the next
fsync instead of queueing for one each. If the batch's transaction fails (a full store,
a request that is a bug), each write runs again in a transaction of its own, so only the
request at fault gets the error.

With a standby on another node (actorium/gcs/durable_replica.py), the committed writes
of the batch are then sent to it, and the answers wait for its fsync'd acknowledgement.

Invariant: a write is answered only after the transaction holding it committed, and,
while a standby is attached, after the standby committed it too.
"""
from __future__ import annotations

import traceback

import zmq

from actorium.core.wire import protocol, transport
from actorium.gcs.durable_store import DurableStore, DurableStoreError


class DurableService:
    def __init__(self, store: DurableStore | None, reason: str, replicas=None):
        self.store = store
        self.reason = reason  # why the store could not be opened, if it could not
        self.replicas = replicas  # a durable_replica.ReplicaLink, or None
        self.ops = store.operations() if store is not None else {}
        self.queue: list = []
        self.seq = store.seq() if store is not None else 0

    def recover_from_standby(self) -> None:
        """At gcs start: take a standby's copy if it holds batches this store lacks."""
        if self.store is None or self.replicas is None:
            return
        newer = self.replicas.newest_copy(self.seq)
        if newer is None:
            return
        path = self.store.env.path()
        self.store.close()
        DurableStore.install_copy(path, newer[1])
        self.store = DurableStore(path)
        self.ops = self.store.operations()
        print(f"gcs: durable store restored from a standby copy at batch {newer[0]} "
              f"(ours was at {self.seq})", flush=True)
        self.seq = self.store.seq()

    def handlers(self) -> dict:
        """Message class -> handler(identity, msg) for the gcs's dispatch table."""
        p = protocol
        classes = (p.JournalBegin, p.JournalCommit, p.CheckpointPut, p.CheckpointGet,
                   p.ReplyGet, p.EventAppend, p.EventRange)
        if self.store is None:
            def refuse(_identity, _msg):
                raise DurableStoreError(self.reason)
            return {cls: refuse for cls in classes}
        return {cls: self.submit for cls in classes}

    def submit(self, identity: bytes, msg) -> None:
        self.queue.append((identity, msg))

    def flush(self, router: zmq.Socket) -> None:
        """Run and answer every queued request (the gcs calls this after each drain)."""
        if not self.queue:
            return
        batch, self.queue = self.queue, []
        results = self._execute(batch)
        written = [msg for (_, msg), (ok, _) in zip(batch, results)
                   if ok and self.ops[type(msg)][0]]
        if written:
            self.seq += 1  # the batch's transaction(s) recorded it (_seq_after)
            if self.replicas is not None:  # answers wait for the standby's ack
                self.replicas.replicate(self.store, self.seq,
                                        [protocol.encode(m) for m in written])
        for (identity, msg), (ok, value) in zip(batch, results):
            transport.reply_to(router, identity, msg.req_id, value, ok)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _execute(self, batch: list) -> list:
        results: list = [None] * len(batch)
        writes = [i for i, (_, m) in enumerate(batch) if self.ops[type(m)][0]]
        if writes:
            try:
                done = self.store._write(lambda txn, counters: self._seq_after(txn, [
                    self.ops[type(batch[i][1])][1](txn, counters, batch[i][1]) for i in writes]))
                for i, value in zip(writes, done):
                    results[i] = (True, value)
            except Exception:
                for i in writes:  # alone, so that only the request at fault fails
                    results[i] = self._alone(batch[i][1])
        for i, (_, msg) in enumerate(batch):
            if results[i] is None:
                results[i] = self._guard(lambda m=msg: self.store._read(
                    lambda txn, c: self.ops[type(m)][1](txn, c, m)))
        return results

    def _alone(self, msg) -> tuple:
        fn = self.ops[type(msg)][1]
        return self._guard(lambda: self.store._write(
            lambda txn, c: self._seq_after(txn, fn(txn, c, msg))))

    def _seq_after(self, txn, out):
        """Record, in the batch's own transaction, that the store now holds batch seq+1.
        Only when replicating: it dirties one more page per fsync'd commit."""
        if self.replicas is not None:
            self.store.t_set_seq(txn, self.seq + 1)
        return out

    @staticmethod
    def _guard(fn) -> tuple:
        try:
            return True, fn()
        except DurableStoreError as exc:
            return False, f"DurableStoreError: {exc}"
        except Exception as exc:
            traceback.print_exc()
            return False, f"{type(exc).__name__}: {exc}"
