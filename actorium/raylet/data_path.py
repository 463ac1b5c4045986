"""Object payload bytes between raylets over plain TCP, authenticated but not encrypted.

Why: CURVE (XSalsa20-Poly1305 in libzmq) halves the cross-node transfer rate on this
class of machine. Object payloads travel here instead, on one extra TCP port per raylet
(``data_addr``, advertised in RegisterNode and the cluster view); every control message
stays on CURVE. ``ACTORIUM_ENCRYPT_OBJECTS=1`` turns this path off (payloads go over
CURVE in FetchChunk/ObjectChunk); ``ACTORIUM_OBJECT_MAC=1`` adds a keyed hash per reply.
Threat model: docs/security.md, "The object data path".

Handshake (mutual HMAC-SHA256 challenge-response over the key ``auth.data_path_key``,
derived from the token with its own label; both sides must finish within
HANDSHAKE_TIMEOUT or the connection is closed):

    client -> server  HELLO  = MAGIC | VERSION | client nonce (32 random bytes)
    server -> client  CHALLENGE = VERSION | server nonce (32) | server proof (32)
    client -> server  client proof (32)
    server -> client  ACK (1 byte)

    proof(role) = HMAC(key, role | MAGIC | VERSION | client nonce | server nonce)

The roles differ, so neither side's proof can be replayed as the other's; fresh nonces
on both sides mean a recorded handshake is worthless. The server reads nothing beyond
these frames before the client's proof checks out (``hmac.compare_digest``); a failure
is logged with the peer address and the connection closed.

After it, each request is one fixed 50-byte frame (REQUEST), checked field by field; a
bad one is logged and ends the connection. Each reply is REPLY (status, object size,
byte count) followed by the bytes, sent from the payload's mapping and received with
``recv_into`` straight into the puller's mapping of its incoming file; with the MAC
option a 32-byte HMAC of (sequence number | reply header | bytes) follows.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import mmap
import os
import select
import socket
import struct
import sys
import threading

from actorium.core.wire.guard import RefusalLog

MAGIC = b"ADP"
VERSION = 1
NONCE = 32
PROOF = 32
HELLO = struct.Struct(f"!3sB{NONCE}s")
CHALLENGE = struct.Struct(f"!B{NONCE}s{PROOF}s")
ACK = b"\x01"
HANDSHAKE_TIMEOUT = 5.0
IO_TIMEOUT = 30.0  # a stalled stream fails the pull instead of hanging it
MAX_ID = 32
READ = 1
REQUEST = struct.Struct(f"!BB{MAX_ID}sQQ")  # kind, id length, id (zero-padded), offset, length
REPLY = struct.Struct("!BqQ")  # status, object size (-1: absent), byte count that follows
OK, ABSENT = 0, 1
MAX_REQUEST = 64 << 20
MAX_CONNECTIONS = 64


def _streams() -> int:
    """``ACTORIUM_OBJECT_STREAMS`` (1..8, default 3: measured best on 2 cores)."""
    try:
        return min(8, max(1, int(os.environ.get("ACTORIUM_OBJECT_STREAMS", "3"))))
    except ValueError:
        return 3


STREAMS = _streams()
MIN_SPLIT = 4 << 20  # objects below this use one stream

_log = RefusalLog()


class HandshakeError(ConnectionError):
    pass


def enabled() -> bool:
    """The plain data path is used unless ``ACTORIUM_ENCRYPT_OBJECTS`` is set to 1."""
    return os.environ.get("ACTORIUM_ENCRYPT_OBJECTS", "") not in ("1", "true", "yes")


def mac_enabled() -> bool:
    return os.environ.get("ACTORIUM_OBJECT_MAC", "") in ("1", "true", "yes")


def _proof(key: bytes, role: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return hmac.new(key, role + MAGIC + bytes([VERSION]) + client_nonce + server_nonce,
                    hashlib.sha256).digest()


def _session_key(key: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return hmac.new(key, b"session" + client_nonce + server_nonce, hashlib.sha256).digest()


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise ConnectionError(f"the peer closed the connection after {got} of {n} bytes")
        got += k
    return bytes(buf)


def _reply_mac(session: bytes, seq: int, header: bytes):
    h = hmac.new(session, struct.pack("!Q", seq) + header, hashlib.sha256)
    return h


# -- serving --------------------------------------------------------------------------
class DataServer:
    """Listens on ``host`` (a random port) and serves payloads from ``store``, one thread
    per authenticated connection (at most MAX_CONNECTIONS at a time)."""

    def __init__(self, host: str, store, token_key: bytes):
        self.store = store
        self.key = token_key
        self.listener = socket.create_server((host, 0), backlog=64)
        port = self.listener.getsockname()[1]
        self.addr = f"{host}:{port}"
        self.endpoint = f"tcp://{self.addr} (object data)"
        self.active = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept_loop, name="data-accept", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            peer_name = f"{peer[0]}:{peer[1]}"
            with self.lock:
                if self.active >= MAX_CONNECTIONS:
                    _log.refused(self.endpoint, peer_name,
                                 f"more than {MAX_CONNECTIONS} connections at once")
                    conn.close()
                    continue
                self.active += 1
            threading.Thread(target=self._serve, args=(conn, peer_name), daemon=True,
                             name="data-serve").start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                session = self._handshake(conn)
            except (HandshakeError, OSError) as exc:
                _log.refused(self.endpoint, peer, _why(exc))
                return
            conn.settimeout(None)  # idle pooled connections wait for the next pull
            try:
                self._requests(conn, session)
            except HandshakeError as exc:  # a bad request from an authenticated peer
                _log.refused(self.endpoint, peer, str(exc))
            except OSError:
                pass  # the puller went away
        finally:
            conn.close()
            with self.lock:
                self.active -= 1

    def _handshake(self, conn: socket.socket) -> bytes:
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            # magic and version first: a stranger is told off on its first 4 bytes
            magic, version = struct.unpack("!3sB", recv_exact(conn, 4))
            if magic != MAGIC:
                raise HandshakeError("not an actorium object data peer (bad magic bytes)")
            if version != VERSION:
                raise HandshakeError(f"object data protocol version {version} "
                                     f"(this node speaks {VERSION})")
            client_nonce = recv_exact(conn, NONCE)
        except socket.timeout:
            raise HandshakeError(f"no handshake within {HANDSHAKE_TIMEOUT:g}s") from None
        server_nonce = os.urandom(NONCE)
        conn.sendall(CHALLENGE.pack(VERSION, server_nonce,
                                    _proof(self.key, b"server", client_nonce, server_nonce)))
        try:
            proof = recv_exact(conn, PROOF)
        except socket.timeout:
            raise HandshakeError(f"no handshake within {HANDSHAKE_TIMEOUT:g}s") from None
        if not hmac.compare_digest(proof, _proof(self.key, b"client", client_nonce,
                                                 server_nonce)):
            raise HandshakeError("the peer does not hold the cluster token "
                                 "(bad HMAC proof)")
        conn.sendall(ACK)
        return _session_key(self.key, client_nonce, server_nonce)

    def _requests(self, conn: socket.socket, session: bytes) -> None:
        use_mac = mac_enabled()
        seq = 0
        cached_id, view = b"", None
        try:
            while not self.closed:
                try:
                    raw = recv_exact(conn, REQUEST.size)
                except ConnectionError:
                    return  # the puller closed its pooled connection
                object_id, offset, length = parse_request(raw)
                if object_id != cached_id:
                    _release(view)
                    cached_id, view = object_id, self._map(object_id)
                if view is None:
                    header, data = REPLY.pack(ABSENT, -1, 0), memoryview(b"")
                else:
                    if offset > view.nbytes:
                        raise HandshakeError(f"request past the end of object "
                                             f"{object_id.hex()} ({offset} > {view.nbytes})")
                    data = view[offset:offset + length]
                    header = REPLY.pack(OK, view.nbytes, data.nbytes)
                conn.sendall(header)
                tag = _reply_mac(session, seq, header) if use_mac else None
                for at in range(0, data.nbytes, PIECE):
                    with data[at:at + PIECE] as piece:
                        conn.sendall(piece)
                        if tag is not None:
                            tag.update(piece)
                data.release()
                if tag is not None:
                    conn.sendall(tag.digest())
                seq += 1
        finally:
            _release(view)

    def _map(self, object_id: bytes) -> memoryview | None:
        """The payload's bytes, mapped from an fd (valid even if the object is deleted
        while it is being sent); None if this node does not have it."""
        fd = self.store.open_payload(object_id)
        if fd is None:
            return None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return memoryview(b"")
            return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_READ))
        finally:
            os.close(fd)


def _release(view: memoryview | None) -> None:
    if view is not None:
        mapping = view.obj
        view.release()
        if isinstance(mapping, mmap.mmap):
            try:
                mapping.close()
            except BufferError:
                pass  # unmapped when the last slice is collected


def parse_request(raw: bytes) -> tuple[bytes, int, int]:
    """(object id, offset, length) of a REQUEST frame; HandshakeError if it is not one."""
    kind, id_len, padded, offset, length = REQUEST.unpack(raw)
    if kind != READ:
        raise HandshakeError(f"unknown request kind {kind}")
    if not 0 < id_len <= MAX_ID or any(padded[id_len:]):
        raise HandshakeError(f"malformed object id (length {id_len})")
    if not 0 < length <= MAX_REQUEST:
        raise HandshakeError(f"request length {length} outside 1..{MAX_REQUEST}")
    if offset >= 1 << 48:
        raise HandshakeError(f"request offset {offset} is absurd")
    return padded[:id_len], offset, length


def pack_request(object_id: bytes, offset: int, length: int) -> bytes:
    return REQUEST.pack(READ, len(object_id), object_id, offset, length)


F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032  # Linux fcntl commands
PIPE_SIZE = 1 << 20  # the default /proc/sys/fs/pipe-max-size
PIECE = 8 << 20  # a reply is sent in pieces of this size (one sendall each)


def _why(exc: BaseException) -> str:
    if isinstance(exc, HandshakeError):
        return str(exc)
    if isinstance(exc, socket.timeout):
        return f"no handshake within {HANDSHAKE_TIMEOUT:g}s"
    return f"connection failed during the handshake ({exc})"


# -- pulling ---------------------------------------------------------------------------
class Connection:
    """One authenticated client connection to a raylet's data port."""

    def __init__(self, addr: str, key: bytes):
        host, _, port = addr.rpartition(":")
        self.addr = addr
        self.sock = socket.create_connection((host, int(port)), timeout=HANDSHAKE_TIMEOUT)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.session = self._handshake(key)
            self.sock.settimeout(IO_TIMEOUT)
        except BaseException:
            self.sock.close()
            raise
        self.seq = 0
        self.pipe: tuple[int, int] | None = None
        self.pipe_size = 0

    def _handshake(self, key: bytes) -> bytes:
        client_nonce = os.urandom(NONCE)
        self.sock.sendall(HELLO.pack(MAGIC, VERSION, client_nonce))
        version, server_nonce, proof = CHALLENGE.unpack(recv_exact(self.sock, CHALLENGE.size))
        if version != VERSION:
            raise HandshakeError(f"the data port at {self.addr} speaks version {version}")
        if not hmac.compare_digest(proof, _proof(key, b"server", client_nonce, server_nonce)):
            raise HandshakeError(f"the data port at {self.addr} does not hold the cluster "
                                 f"token (bad HMAC proof)")
        self.sock.sendall(_proof(key, b"client", client_nonce, server_nonce))
        if recv_exact(self.sock, 1) != ACK:
            raise HandshakeError(f"the data port at {self.addr} refused the handshake")
        return _session_key(key, client_nonce, server_nonce)

    def read_into(self, object_id: bytes, offset: int, length: int, fd: int, mapping,
                  cancelled) -> int:
        """Fill bytes [offset, offset + length) of the incoming file ``fd`` with the
        object's same bytes; returns the object size (-1: the source lacks it).
        ``mapping`` (a shared mapping of that file) is given when replies carry a MAC:
        the bytes are then received into it to be hashed; otherwise they are spliced
        from the socket into the file, never entering user space."""
        done = 0
        total = -1
        while done < length:
            if cancelled():
                raise ConnectionAbortedError("the pull was cancelled")
            want = min(MAX_REQUEST, length - done)
            if mapping is None:
                count, total = self._read_one(object_id, offset + done, want, fd, None)
            else:
                with memoryview(mapping) as whole, \
                        whole[offset + done:offset + done + want] as dest:
                    count, total = self._read_one(object_id, offset + done, want, fd, dest)
            if count < 0:
                return -1
            done += count
        return total

    def _read_one(self, object_id: bytes, offset: int, want: int, fd: int,
                  dest: memoryview | None) -> tuple[int, int]:
        """One request: (bytes received, object size), or (-1, -1) if absent. With
        ``dest`` the reply's bytes land there and its MAC is checked."""
        self.sock.sendall(pack_request(object_id, offset, want))
        header = recv_exact(self.sock, REPLY.size)
        status, total, count = REPLY.unpack(header)
        if status != OK:
            return -1, -1
        if count != want:
            raise ConnectionError(f"the data port at {self.addr} sent {count} bytes of "
                                  f"{object_id.hex()} for {want} asked")
        if dest is None:
            self._splice_into(fd, offset, count)
            self.seq += 1
            return count, total
        got = 0
        while got < count:
            with dest[got:count] as part:
                k = self.sock.recv_into(part)
            if k == 0:
                raise ConnectionError(f"the data port at {self.addr} closed mid-object")
            got += k
        tag = _reply_mac(self.session, self.seq, header)
        with dest[:count] as received:
            tag.update(received)
        if not hmac.compare_digest(recv_exact(self.sock, 32), tag.digest()):
            raise ConnectionError(f"object {object_id.hex()} from {self.addr} failed "
                                  f"its integrity check (tampered in transit?)")
        self.seq += 1
        return count, total

    def _splice_into(self, fd: int, offset: int, count: int) -> None:
        """Socket -> pipe -> file with splice(2): the kernel moves the received pages'
        contents into the file's pages; no user-space buffer, no page faults on a
        mapping. Measured here: about 35% less receiver CPU than recv_into a fresh
        mapping of the incoming file."""
        if self.pipe is None:
            self.pipe = os.pipe()
            try:
                self.pipe_size = fcntl.fcntl(self.pipe[1], F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                self.pipe_size = fcntl.fcntl(self.pipe[1], F_GETPIPE_SZ)
        r, w = self.pipe
        src = self.sock.fileno()
        end = offset + count
        while offset < end:
            try:
                k = os.splice(src, w, min(self.pipe_size, end - offset))
            except BlockingIOError:  # the socket has a timeout, so it is non-blocking
                if not select.select([src], [], [], IO_TIMEOUT)[0]:
                    raise TimeoutError(f"no data from {self.addr} for {IO_TIMEOUT:g}s") \
                        from None
                continue
            if k == 0:
                raise ConnectionError(f"the data port at {self.addr} closed mid-object")
            while k:
                n = os.splice(r, fd, k, offset_dst=offset)
                k -= n
                offset += n

    def close(self) -> None:
        self.sock.close()
        if self.pipe is not None:
            os.close(self.pipe[0])
            os.close(self.pipe[1])
            self.pipe = None


class ConnectionPool:
    """Authenticated connections kept per peer data address, reused across pulls."""

    def __init__(self, key: bytes):
        self.key = key
        self.idle: dict[str, list[Connection]] = {}
        self.lock = threading.Lock()

    def take(self, addr: str) -> tuple[Connection, bool]:
        """(connection, reused)."""
        with self.lock:
            free = self.idle.get(addr)
            if free:
                return free.pop(), True
        return Connection(addr, self.key), False

    def give(self, conn: Connection) -> None:
        with self.lock:
            self.idle.setdefault(conn.addr, []).append(conn)

    def drop(self, addr: str) -> None:
        with self.lock:
            for conn in self.idle.pop(addr, []):
                conn.close()

    def close(self) -> None:
        with self.lock:
            for conns in self.idle.values():
                for conn in conns:
                    conn.close()
            self.idle.clear()


def fetch_range(pool: ConnectionPool, addr: str, object_id: bytes, offset: int, length: int,
                fd: int, mapping, cancelled) -> int:
    """Fill bytes [offset, offset + length) of the incoming file ``fd`` with the object's
    bytes from the data port at ``addr`` (through ``mapping`` when replies carry a MAC,
    see ``Connection.read_into``); a pooled connection that turns out dead is replaced
    once."""
    for attempt in (0, 1):
        conn, reused = pool.take(addr)
        try:
            total = conn.read_into(object_id, offset, length, fd, mapping, cancelled)
        except (ConnectionError, OSError) as exc:
            conn.close()
            if reused and attempt == 0 and not isinstance(exc, (HandshakeError,
                                                                 ConnectionAbortedError)):
                continue
            raise
        pool.give(conn)
        return total
    raise AssertionError("unreachable")


def split(total: int, streams: int = 0) -> list[tuple[int, int]]:
    """[(offset, length)] ranges covering ``total`` bytes, one per stream."""
    streams = streams or STREAMS
    if total < MIN_SPLIT or streams <= 1:
        return [(0, total)]
    step = -(-total // streams)
    step += -step % 4096  # page-aligned ranges
    return [(off, min(step, total - off)) for off in range(0, total, step)]


def report(text: str) -> None:
    print(f"raylet data path: {text}", file=sys.stderr, flush=True)
