"""Replication of the gcs's durable store to a standby on another node.

Every non-head TCP node runs a ``Standby`` (a thread of its node process with its own
socket) and announces its address in the gcs's KV under ``durable-standby/<node id>``.
The gcs's ``ReplicaLink`` picks one live non-head standby. Its durable service commits
each drain's writes once (group commit, one fsync), then sends the same write requests
to the standby with the batch's ``seq``; the standby applies them with the same store
code in one fsync'd LMDB transaction and acknowledges; only then does the gcs answer the
callers. So every durable write a caller was told about (journal intent and outcome,
checkpoint and its replies, event) is on two disks of two nodes.

A standby whose copy is not exactly one batch behind (new, or it missed batches) is sent
a full compacted copy first. A standby that fails or does not acknowledge within
ACK_TIMEOUT is dropped and another is picked; with none left the gcs goes on unreplicated
(it says so in its log) rather than stopping the cluster, and replicates again as soon as
a standby appears. When the gcs starts, it asks the announced standbys for their seq and
installs the newest copy if it is ahead of its own store (the head's durable store was
lost or restored from an old backup).

Invariant: the seq of a store is the number of write batches it holds; the standby only
applies batch ``seq`` on top of ``seq - 1``, so its copy is always a prefix of the gcs's.
"""
from __future__ import annotations

import os
import threading
import time
import traceback

from actorium.core.wire import protocol, transport
from actorium.gcs.durable_store import DurableStore

KEY_PREFIX = b"durable-standby/"
# Short: the gcs loop waits for the ack, and must not miss heartbeats (node timeout 1.5 s).
ACK_TIMEOUT = float(os.environ.get("ACTORIUM_REPLICA_ACK_TIMEOUT", "0.5"))
# A full copy is sent from the gcs loop too: a store that cannot be copied within this
# is not replicated (the gcs logs it). Fetching a copy at gcs start may take longer.
SYNC_TIMEOUT = float(os.environ.get("ACTORIUM_REPLICA_SYNC_TIMEOUT", "1.0"))
FETCH_TIMEOUT = 60.0
RETRY_PERIOD = 1.0  # how often a gcs without a standby looks for one
SHUN_PERIOD = 10.0  # a standby that failed is not picked again for this long
# At most this long per batch for acks and picking (the gcs loop waits meanwhile, and a
# loop stalled longer than the node timeout would declare live nodes dead).
BATCH_BUDGET = 2 * ACK_TIMEOUT


class OutOfSync(RuntimeError):
    """The standby's copy is not the batch before this one: it needs a full copy."""


class Standby:
    """The copy of the gcs's durable store on this node, served on its own socket."""

    def __init__(self, path: str, host: str, gcs_addr: str, node_id: str):
        self.path = path
        self.host = host
        self.gcs_addr = gcs_addr
        self.node_id = node_id
        self.store: DurableStore | None = None
        self.ops: dict = {}
        self.addr = ""
        self.stopping = False
        self.thread: threading.Thread | None = None

    def start(self) -> str:
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,),
                                       name="actorium-durable-standby", daemon=True)
        self.thread.start()
        ready.wait(10)
        return self.addr

    def stop(self) -> None:
        self.stopping = True
        if self.thread is not None:
            self.thread.join(2)

    def _serve(self, ready: threading.Event) -> None:
        # Authenticated like every cluster TCP port (CURVE, transport.secure): only holders
        # of the cluster token can read or overwrite the copy.
        sock, self.addr = transport.bind_router_at(f"tcp://{self.host}:*")
        ready.set()
        announced = False
        try:
            while not self.stopping:
                if not announced:
                    announced = self._announce()
                if not sock.poll(200):
                    continue
                for identity, data in transport.pending(sock, router=True):
                    self._handle(sock, identity, data)
        finally:
            sock.close(0)
            if self.store is not None:
                self.store.close()

    def _announce(self) -> bool:
        try:
            transport.rpc(self.gcs_addr, protocol.KvPut(
                transport.next_req_id(), KEY_PREFIX + self.node_id.encode(),
                self.addr.encode(), True), timeout=2, what="the gcs")
            return True
        except (TimeoutError, transport.RpcError):
            return False

    def _open(self) -> DurableStore:
        if self.store is None:
            self.store = DurableStore(self.path)
            self.ops = self.store.operations()
        return self.store

    def _handle(self, sock, identity, data) -> None:
        try:
            msg = protocol.decode(data)
        except protocol.ProtocolError:
            return
        try:
            transport.reply_to(sock, identity, msg.req_id, self._answer(msg))
        except Exception as exc:
            if not isinstance(exc, OutOfSync):
                traceback.print_exc()
            transport.reply_to(sock, identity, msg.req_id,
                               f"{type(exc).__name__}: {exc}", ok=False)

    def _answer(self, msg):
        if isinstance(msg, protocol.ReplicaState):
            return self._open().seq() if os.path.exists(self.path) else 0
        if isinstance(msg, protocol.ReplicaApply):
            store = self._open()
            if store.seq() != msg.seq - 1:
                raise OutOfSync(f"standby copy at {store.seq()}, batch {msg.seq}")
            writes = [protocol.decode(w) for w in msg.writes]

            def apply(txn, counters):
                for w in writes:
                    self.ops[type(w)][1](txn, counters, w)
                store.t_set_seq(txn, msg.seq)
            store._write(apply)
            return msg.seq
        if isinstance(msg, protocol.ReplicaLoad):
            if self.store is not None:
                self.store.close()
                self.store = None
            DurableStore.install_copy(self.path, msg.data)
            return self._open().seq()
        if isinstance(msg, protocol.ReplicaFetch):
            return list(self._open().copy_bytes())
        raise ValueError(f"a durable standby does not answer {msg.op}")


class ReplicaLink:
    """The gcs's side: which standby gets each committed batch, and catching it up."""

    def __init__(self, storage, members):
        self.storage = storage
        self.members = members
        self.addr = ""
        self.node_id = ""
        self.next_look = 0.0
        self.warned = False
        self.failed: dict[str, float] = {}  # node id -> when its standby last failed

    def _candidates(self) -> list[tuple[str, str]]:
        now = time.monotonic()
        shunned = {n for n, t in self.failed.items() if now - t < SHUN_PERIOD}
        alive = {n.node_id for n in self.members.alive()
                 if not n.head and n.node_id not in shunned}
        out = []
        for key, _ in self._entries():
            node_id = key[len(KEY_PREFIX):].decode()
            if node_id in alive:
                out.append((node_id, self.storage.get_raw("kv", key).decode()))
        return out

    def _entries(self) -> list:
        return [(k, v) for k, v in self._raw_kv() if k.startswith(KEY_PREFIX)]

    def _raw_kv(self) -> list:
        with self.storage.env.begin(db=self.storage.dbs["kv"]) as txn:
            cur = txn.cursor()
            if not cur.set_range(KEY_PREFIX):
                return []
            return [(bytes(k), bytes(v)) for k, v in cur if bytes(k).startswith(KEY_PREFIX)]

    def node_died(self, node_id: str) -> None:
        if node_id == self.node_id:
            self.addr = self.node_id = ""

    def replicate(self, store: DurableStore, seq: int, writes: list) -> bool:
        """Send batch ``seq`` (encoded write requests) to the standby and wait for its
        fsync'd acknowledgement. False when no standby has it (none, or all failed)."""
        deadline = time.monotonic() + BATCH_BUDGET
        while time.monotonic() < deadline:
            if not self.addr and not self._pick(store, seq - 1, deadline):
                return False
            try:
                transport.rpc(self.addr, protocol.ReplicaApply(
                    transport.next_req_id(), seq, writes), ACK_TIMEOUT, what="the standby")
                return True
            except transport.RpcError as exc:
                if "OutOfSync" not in str(exc) or not self._load(store):
                    self._drop(f"it failed: {exc}")
            except TimeoutError as exc:
                self._drop(str(exc))
        return False

    def _pick(self, store: DurableStore, seq: int, deadline: float) -> bool:
        now = time.monotonic()
        if now < self.next_look:
            return False
        self.next_look = now + RETRY_PERIOD
        for node_id, addr in self._candidates():
            if time.monotonic() >= deadline:
                break
            self.node_id, self.addr = node_id, addr
            try:
                have = transport.rpc(addr, protocol.ReplicaState(transport.next_req_id()),
                                     ACK_TIMEOUT, what="the standby")
            except (TimeoutError, transport.RpcError):
                self.failed[node_id] = time.monotonic()
                continue
            # An empty copy always gets a full one: our store may hold records written
            # before batches were numbered (a single-node cluster's store, reused).
            if (have == seq and seq > 0) or self._load(store):
                print(f"gcs: durable store replicated to node {node_id} ({addr})", flush=True)
                self.warned = False
                return True
        self.addr = self.node_id = ""
        if not self.warned:
            print("gcs: no durable standby on another node: durable writes are not "
                  "replicated", flush=True)
            self.warned = True
        return False

    def _load(self, store: DurableStore) -> bool:
        seq, data = store.copy_bytes()
        try:
            transport.rpc(self.addr, protocol.ReplicaLoad(transport.next_req_id(), seq, data),
                          SYNC_TIMEOUT, what="the standby")
            return True
        except (TimeoutError, transport.RpcError) as exc:
            self._drop(f"the full copy failed: {exc}")
            return False

    def _drop(self, why: str) -> None:
        print(f"gcs: durable standby {self.node_id} dropped: {why}", flush=True)
        self.failed[self.node_id] = time.monotonic()
        self.addr = self.node_id = ""
        self.next_look = 0.0

    def newest_copy(self, own_seq: int) -> tuple[int, bytes] | None:
        """At gcs start: the newest standby copy if it is ahead of ours, else None."""
        best = None
        for _node_id, addr in self._candidates():
            try:
                have = transport.rpc(addr, protocol.ReplicaState(transport.next_req_id()),
                                     1.0, what="the standby")
                if have > own_seq and (best is None or have > best[0]):
                    best = (have, addr)
            except (TimeoutError, transport.RpcError):
                continue
        if best is None:
            return None
        seq, data = transport.rpc(best[1], protocol.ReplicaFetch(transport.next_req_id()),
                                  FETCH_TIMEOUT, what="the standby")
        return seq, data
