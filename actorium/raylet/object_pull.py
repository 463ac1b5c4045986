"""Moving objects between nodes, raylet to raylet, in chunks.

Pull lifecycle (one per object being fetched into this node): SIZING (the first WINDOW
chunks were asked for; the first answer carries the total size, answers past the end
are empty) -> FETCHING (up to WINDOW chunks in flight, each answer asks for the next missing one; each chunk is written in place
into a temporary payload file as it arrives, so writing overlaps the transfer) -> done
(the file is committed to the local store as an unpinned secondary copy, every waiter
is answered) or failed (the source does not have it, is declared dead, or stays silent for
PULL_TIMEOUT; waiters get an error Reply and raise ObjectLostError).

With the object data path (``data_path.py``, the default between TCP nodes whose
source advertises a data port): SIZING asks only for the size over CURVE (length 0,
which also records this raylet as holding a copy), then STREAMING: the object is split
into ``data_path.STREAMS`` ranges, each read by a pool thread over an authenticated
plain TCP connection and spliced straight into the incoming file; each thread's
end is posted to the raylet's loop (``wakeup_fd``), and the last one commits or fails
the pull. A stream that fails for a reason other than the source lacking the object
falls back to the CURVE chunks above for the whole object, logged.

Serving side: a FetchChunk is answered with an ObjectChunk header plus the bytes as a
second, zero-copy frame sliced from the read-only mapping of the payload (each chunk's
pages mapped in one call just before it is sent). The server
remembers which raylets took a copy, so freeing the primary frees the copies too.
"""
from __future__ import annotations

import mmap
import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor

from actorium.core.wire import auth, protocol, transport
from actorium.raylet import data_path

CHUNK = 8 << 20
WINDOW = 8
PULL_TIMEOUT = 30.0

SIZING, FETCHING, STREAMING = "sizing", "fetching", "streaming"
MADV_POPULATE_READ = 22  # Linux >= 5.14; not exposed by Python's mmap module


def _populate(view, offset: int, length: int) -> None:
    """Map the pages of one chunk in one call before ZeroMQ sends it, instead of a
    fault per page during the send, or populating the whole object before the first
    chunk can leave (measured: the per-chunk way is the fastest of the three)."""
    try:
        view.obj.madvise(MADV_POPULATE_READ, offset, length)
    except (OSError, ValueError, AttributeError):
        pass


class Pull:
    __slots__ = ("object_id", "source", "state", "total", "seen", "next_offset",
                 "received", "waiters", "last_progress", "fd", "path", "data_addr",
                 "pending", "error", "cancelled", "mapping")

    def __init__(self, object_id: bytes, source: str):
        self.object_id = object_id
        self.source = source
        self.state = SIZING
        self.total = -1
        self.seen: set[int] = set()  # offsets written
        self.fd = -1
        self.path = ""
        self.next_offset = 0
        self.received = 0
        self.waiters: list = []  # (identity, req_id)
        self.last_progress = time.monotonic()
        self.data_addr = ""  # the source's data port, if the bytes come that way
        self.pending = 0  # streams still running
        self.error = ""  # why a stream failed
        self.cancelled = False  # waiters already answered: streams stop, nothing commits
        self.mapping = None


class ObjectPuller:
    def __init__(self, raylet):
        self.raylet = raylet
        self.pulls: dict[bytes, Pull] = {}
        self.served: dict[bytes, set] = {}  # object id -> raylets that took a copy
        self.dead_sources: set[str] = set()  # raylets of nodes declared dead
        # Mappings of objects being served, kept until their last chunk is sent, so a
        # transfer maps (and indexes) the payload once, not once per chunk.
        self.serving: dict[bytes, memoryview] = {}
        self.server: data_path.DataServer | None = None
        self.pool: data_path.ConnectionPool | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.completed = {"data_path": 0, "curve": 0}  # pulls done, by how the bytes came
        self.finished: queue.SimpleQueue = queue.SimpleQueue()  # (pull, total | exception)
        self.wakeup_fd, self._wake_w = -1, -1

    def start_data_path(self, host: str) -> str:
        """Listen on the object data port (TCP nodes, unless objects must be encrypted);
        returns its address, "" when off."""
        if not host or not data_path.enabled():
            return ""
        key = auth.data_path_key()
        self.server = data_path.DataServer(host, self.raylet.store, key)
        self.pool = data_path.ConnectionPool(key)
        self.wakeup_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wakeup_fd, False)
        return self.server.addr

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.pool is not None:
            self.pool.close()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    # -- pulling ----------------------------------------------------------------
    def on_pull(self, identity, msg) -> None:
        store = self.raylet.store
        if store.contains(msg.object_id):
            self.raylet._reply(identity, msg.req_id, True)
            return
        if msg.source == self.raylet.addr:
            self.raylet._reply(identity, msg.req_id, "the object is not in this node's store",
                               ok=False)
            return
        if msg.source in self.dead_sources:
            self.raylet._reply(identity, msg.req_id, "the node holding the object died",
                               ok=False)
            return
        pull = self.pulls.get(msg.object_id)
        if pull is None:
            pull = self.pulls[msg.object_id] = Pull(msg.object_id, msg.source)
            if self.pool is not None:
                pull.data_addr = self.raylet.view.data_addrs.get(msg.source, "")
            if pull.data_addr:  # only the size (and the copy's record) over CURVE
                transport.send(pull.source, protocol.FetchChunk(pull.object_id, 0, 0,
                                                                self.raylet.addr))
        if not pull.data_addr and pull.state == SIZING and not pull.next_offset:
            for _ in range(WINDOW):  # the size is not known yet: ask a full window anyway
                self._ask(pull, pull.next_offset)
        pull.waiters.append((identity, msg.req_id))

    def _ask(self, pull: Pull, offset: int) -> None:
        pull.next_offset = offset + CHUNK
        transport.send(pull.source, protocol.FetchChunk(pull.object_id, offset, CHUNK,
                                                        self.raylet.addr))

    def on_chunk(self, msg, payload) -> None:
        pull = self.pulls.get(msg.object_id)
        if pull is None:
            return
        if msg.total < 0:
            self._fail(pull, f"node {pull.source} no longer has object {msg.object_id.hex()}")
            return
        pull.last_progress = time.monotonic()
        if pull.state == SIZING:
            try:
                pull.fd, pull.path = self.raylet.store.open_incoming(pull.object_id, msg.total)
            except OSError as exc:
                self._fail(pull, f"no room for object {pull.object_id.hex()}: {exc}")
                return
            pull.state, pull.total = FETCHING, msg.total
            if pull.data_addr:
                self._stream(pull)
                return
        elif pull.state == STREAMING:
            return
        if pull.next_offset < pull.total:
            self._ask(pull, pull.next_offset)  # before writing: keep the window full
        if msg.offset not in pull.seen and payload is not None:
            pull.seen.add(msg.offset)
            data = payload.buffer
            written = 0
            while written < len(data):
                written += os.pwrite(pull.fd, data[written:], msg.offset + written)
            pull.received += len(data)
        if pull.received >= pull.total:
            self._finish(pull)

    # -- the data path -----------------------------------------------------------
    def _stream(self, pull: Pull) -> None:
        if pull.total == 0:
            self._finish(pull)
            return
        pull.state = STREAMING
        if data_path.mac_enabled():  # bytes to hash: receive them into a mapping
            fd = os.open(pull.path, os.O_RDWR)  # the store's fd is write-only
            try:
                pull.mapping = mmap.mmap(fd, pull.total)
            finally:
                os.close(fd)
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pull")
        ranges = data_path.split(pull.total)
        pull.pending = len(ranges)
        for offset, length in ranges:
            future = self.executor.submit(data_path.fetch_range, self.pool, pull.data_addr,
                                          pull.object_id, offset, length, pull.fd,
                                          pull.mapping,
                                          lambda p=pull: p.cancelled)
            future.add_done_callback(lambda f, p=pull: self._post(p, f))

    def _post(self, pull: Pull, future) -> None:
        """Runs on a pool thread: hand the stream's end to the raylet's loop."""
        exc = future.exception()
        self.finished.put((pull, exc if exc is not None else future.result()))
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # shutting down

    def on_wakeup(self) -> None:
        """A stream ended (the raylet's loop saw ``wakeup_fd``)."""
        try:
            while os.read(self.wakeup_fd, 4096):
                pass
        except BlockingIOError:
            pass
        while not self.finished.empty():
            pull, result = self.finished.get()
            pull.pending -= 1
            pull.last_progress = time.monotonic()
            if isinstance(result, BaseException) and not pull.error:
                pull.error = f"{type(result).__name__}: {result}"
                pull.cancelled = True
            elif result == -1 and not pull.error:
                pull.error = "absent"
                pull.cancelled = True
            if pull.pending == 0:
                self._streams_done(pull)

    def _streams_done(self, pull: Pull) -> None:
        mapping, pull.mapping = pull.mapping, None
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:
                pass  # a thread's slice is not collected yet: unmapped when it is
        if self.pulls.get(pull.object_id) is not pull:  # failed meanwhile: waiters told
            os.close(pull.fd)
            self.raylet.store.discard_incoming(pull.path)
            return
        if pull.error == "absent":
            self._fail(pull, f"node {pull.source} no longer has object {pull.object_id.hex()}")
        elif pull.error:
            data_path.report(f"streaming object {pull.object_id.hex()} from "
                             f"{pull.data_addr} failed ({pull.error}); fetching it over "
                             f"CURVE instead")
            pull.data_addr, pull.error, pull.cancelled = "", "", False
            pull.state, pull.next_offset = FETCHING, 0
            for _ in range(WINDOW):
                if pull.next_offset < pull.total:
                    self._ask(pull, pull.next_offset)
        else:
            self._finish(pull)

    def _finish(self, pull: Pull) -> None:
        del self.pulls[pull.object_id]
        os.close(pull.fd)
        pull.fd = -1
        try:
            self.raylet.store.commit_incoming(pull.object_id, pull.path, pull.total)
        except Exception as exc:  # store full: the waiters learn why
            self._answer(pull, f"{type(exc).__name__}: {exc}", ok=False)
            return
        self.completed["data_path" if pull.data_addr else "curve"] += 1
        self._answer(pull, True)

    def _fail(self, pull: Pull, why: str) -> None:
        self.pulls.pop(pull.object_id, None)
        if pull.pending:  # streams still write into the file: the last one cleans up
            pull.cancelled = True
        elif pull.fd >= 0:
            os.close(pull.fd)
            pull.fd = -1
            self.raylet.store.discard_incoming(pull.path)
        self._answer(pull, why, ok=False)

    def _answer(self, pull: Pull, value, ok: bool = True) -> None:
        for identity, req_id in pull.waiters:
            self.raylet._reply(identity, req_id, value, ok)
        pull.waiters.clear()

    def source_died(self, raylet_addr: str) -> None:
        self.dead_sources.add(raylet_addr)
        data_addr = self.raylet.view.data_addrs.pop(raylet_addr, "")
        if data_addr and self.pool is not None:
            self.pool.drop(data_addr)  # its pooled connections lead nowhere now
        for pull in [p for p in self.pulls.values() if p.source == raylet_addr]:
            self._fail(pull, f"the node holding object {pull.object_id.hex()} died")

    def expire(self) -> None:
        now = time.monotonic()
        # Streams bound their own silence (data_path.IO_TIMEOUT on every socket).
        for pull in [p for p in self.pulls.values()
                     if now - p.last_progress > PULL_TIMEOUT and not p.pending]:
            self._fail(pull, f"no data from {pull.source} for {PULL_TIMEOUT:g}s")

    # -- serving ------------------------------------------------------------------
    def on_fetch(self, identity, msg) -> None:
        view = self.serving.get(msg.object_id)
        if view is None:
            view = self.raylet.store.get(msg.object_id)
            # (a size-only request, from a pull using the data path, maps nothing to keep)
            if view is not None and msg.length and view.nbytes > msg.offset + msg.length:
                self.serving[msg.object_id] = view
        elif msg.offset + msg.length >= view.nbytes:
            del self.serving[msg.object_id]
        sock = transport.thread_dealer(msg.reply_to)
        if view is None:
            sock.send(protocol.encode(protocol.ObjectChunk(msg.object_id, msg.offset, -1)))
            return
        self.served.setdefault(msg.object_id, set()).add(msg.reply_to)
        header = protocol.encode(protocol.ObjectChunk(msg.object_id, msg.offset, view.nbytes))
        data = view[msg.offset:msg.offset + msg.length]
        if data.nbytes:
            _populate(view, msg.offset, data.nbytes)
        sock.send_multipart([header, data], copy=False)

    def copies(self, object_ids: list) -> dict:
        """Raylets holding copies of these objects (forgotten here): addr -> ids."""
        out: dict = {}
        for oid in object_ids:
            self.serving.pop(oid, None)
            for addr in self.served.pop(oid, ()):
                out.setdefault(addr, []).append(oid)
        return out

