"""The guard: one thread per process that vets the peers of its TCP server sockets.

* It answers ZAP (``inproc://zeromq.zap.01``): libzmq asks it about every CURVE client
  that got through the cryptographic handshake, and it accepts only the cluster's client
  key (derived from the token, ``core/wire/auth.py``). A client that does not hold the token
  normally never gets this far: it cannot encrypt its HELLO to the server key.
* It reads the socket monitor of every TCP server socket, so that a connection closed
  before its handshake succeeded — no CURVE, wrong token, garbage bytes, an oversized
  frame, a silent peer — is logged with the peer's address and the reason.

libzmq drops such peers before a single message reaches the application, so nothing
unauthenticated is ever decoded; the guard only reports. Lines go to stderr (the
process's log file, written to fd 2), at most ``LOG_BURST`` per ``LOG_WINDOW`` seconds.

Monitor events name the connection (its fd) only on accept and disconnect; handshake
outcomes are matched to connections in accept order, which is exact for sequential
handshakes and best effort (the reason may be a concurrent one's) otherwise. The peer's
address is read from the connection's fd when the guard sees the accept; a peer that
is refused before that (possible on loopback, where garbage in the first packet is
refused within microseconds) is logged as an unknown peer, with the reason.
"""
from __future__ import annotations

import errno
import itertools
import os
import queue
import socket
import struct
import threading
import time
from collections import OrderedDict

import zmq
from zmq.utils import z85

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"actorium"
LOG_BURST = 20
LOG_WINDOW = 10.0
_POLL_MS = 100
_EVENTS = (zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_MONITOR_STOPPED)
_PROTOCOL_REASONS = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        "the peer does not speak CURVE (an unauthenticated client)",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        "the peer's CURVE handshake does not decrypt (it does not hold the cluster token)",
}
_ids = itertools.count(1)


class _RefusalLog:
    """Rate-limited refusal lines on stderr."""

    def __init__(self):
        self.window_start = 0.0
        self.count = 0
        self.suppressed = 0

    def refused(self, endpoint: str, peer: str, reason: str) -> None:
        now = time.monotonic()
        if now - self.window_start > LOG_WINDOW:
            if self.suppressed:
                self._write(f"{self.suppressed} more refused connection(s) were not logged")
            self.window_start, self.count, self.suppressed = now, 0, 0
        self.count += 1
        if self.count > LOG_BURST:
            self.suppressed += 1
            return
        self._write(f"refused connection to {endpoint} from {peer}: {reason}")

    @staticmethod
    def _write(text: str) -> None:
        """Straight to fd 2, the process's log file: a worker's ``sys.stderr`` forwards
        lines to the driver instead."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} actorium auth (pid {os.getpid()}): {text}\n".encode(errors="replace")
        try:
            os.write(2, line)
        except OSError:
            pass


_DEFAULT_REASON = ("closed during the handshake: not a ZeroMQ CURVE peer (invalid greeting, "
                   "garbage bytes or an oversized frame)")

RefusalLog = _RefusalLog  # also used by the raylet's object data port

_ZAP_LOGGED = ""  # reason marker: the ZAP handler already logged this refusal
_UNKNOWN_PEER = "an unknown peer (it disconnected before its address could be read)"


class _Conn:
    __slots__ = ("peer", "reason")

    def __init__(self, peer: str | None):
        self.peer = peer
        self.reason: str | None = None


class _Monitor:
    """Connection bookkeeping for one monitored server socket."""

    def __init__(self, pair: zmq.Socket, endpoint: str):
        self.pair = pair
        self.set_endpoint(endpoint)
        self.handshaking: OrderedDict[int, _Conn] = OrderedDict()  # fd -> conn, accept order

    def set_endpoint(self, endpoint: str) -> None:
        """(Also called from the socket's owner thread once a ``:*`` port is bound; the
        guard thread only reads these two attributes.)"""
        try:
            port = int(endpoint.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            port = -1
        self.endpoint, self.port = endpoint, port

    def on_event(self, event: int, value: int, log: _RefusalLog) -> bool:
        """Handle one event; False once the monitored socket is gone."""
        if event == zmq.EVENT_MONITOR_STOPPED:
            return False
        if event == zmq.EVENT_ACCEPTED:
            self.handshaking[value] = _Conn(_peer_of(value, self.port))
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            fd = self._oldest_undecided()
            if fd is not None:
                del self.handshaking[fd]
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                       zmq.EVENT_HANDSHAKE_FAILED_AUTH):
            fd = self._oldest_undecided()
            if fd is not None:  # logged when it disconnects
                self.handshaking[fd].reason = (
                    _ZAP_LOGGED if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                    else _reason(event, value))
        elif event == zmq.EVENT_DISCONNECTED:
            conn = self.handshaking.pop(value, None)
            if conn is not None and conn.reason != _ZAP_LOGGED:
                log.refused(self.endpoint, conn.peer or _UNKNOWN_PEER,
                            conn.reason or _DEFAULT_REASON)
        return True

    def _oldest_undecided(self) -> int | None:
        for fd, conn in self.handshaking.items():
            if conn.reason is None:
                return fd
        return None


def _peer_of(fd: int, local_port: int) -> str | None:
    """``host:port`` of the peer on ``fd`` (owned by libzmq's I/O thread: we look at a
    dup), or None when the connection is already gone — also when ``fd`` has already
    been reused for something that is not a connection to ``local_port``."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        with socket.socket(fileno=dup) as s:
            if s.type != socket.SOCK_STREAM or s.getsockname()[1] != local_port:
                return None
            host, port = s.getpeername()[:2]
            return f"{host}:{port}"
    except (OSError, ValueError, IndexError, TypeError):
        return None


def _reason(event: int, value: int) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return _PROTOCOL_REASONS.get(value, f"ZMTP protocol error 0x{value:x}")
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        if value in (errno.EPIPE, errno.ECONNRESET):
            return ("the peer hung up during the handshake (it does not speak CURVE with the "
                    "cluster's keys)")
        if value in (errno.ETIMEDOUT, errno.EAGAIN, 0):
            return "no completed handshake in time"
        return f"handshake failed ({os.strerror(value) if value > 0 else value})"
    return f"refused by ZAP (status {value})"


class Guard:
    """The guard thread of one ZeroMQ context (see the module docstring)."""

    def __init__(self, ctx: zmq.Context, client_public_z85: bytes):
        self.ctx = ctx
        self.set_client_key(client_public_z85)
        self.log = _RefusalLog()
        self._new = queue.SimpleQueue()
        self._monitors: dict[int, _Monitor] = {}  # id(socket) -> its monitor
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="actorium-guard", daemon=True)
        self.thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the actorium auth guard did not start: {self._error!r}")

    def set_client_key(self, client_public_z85: bytes) -> None:
        """Accept this key from now on (the process token may change between clusters)."""
        self.client_key = z85.decode(client_public_z85)

    def watch(self, sock: zmq.Socket, endpoint: str) -> None:
        """Monitor server socket ``sock`` (call from its owner thread, before ``bind``).
        The monitor's reading end is connected here, so no event is missed before the
        guard thread picks it up."""
        addr = f"inproc://actorium-guard-monitor-{os.getpid()}-{next(_ids)}"
        sock.monitor(addr, _EVENTS)
        pair = self.ctx.socket(zmq.PAIR)
        pair.setsockopt(zmq.LINGER, 0)
        pair.connect(addr)
        monitor = _Monitor(pair, endpoint)
        self._monitors[id(sock)] = monitor
        self._new.put(monitor)

    def bound(self, sock: zmq.Socket, endpoint: str) -> None:
        """``sock`` was bound to ``endpoint`` (the real port of a ``tcp://host:*``)."""
        monitor = self._monitors.get(id(sock))
        if monitor is not None:
            monitor.set_endpoint(endpoint)

    # -- the thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            zap = self.ctx.socket(zmq.REP)
            zap.setsockopt(zmq.LINGER, 0)
            zap.bind(ZAP_ENDPOINT)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        poller.register(zap, zmq.POLLIN)
        monitors: dict[zmq.Socket, _Monitor] = {}
        try:
            while True:
                while not self._new.empty():
                    mon = self._new.get()
                    monitors[mon.pair] = mon
                    poller.register(mon.pair, zmq.POLLIN)
                for sock, _ in poller.poll(_POLL_MS):
                    if sock is zap:
                        self._answer_zap(zap)
                        continue
                    mon = monitors[sock]
                    if not self._drain_monitor(mon):
                        poller.unregister(sock)
                        del monitors[sock]
                        sock.close(0)
                        for key in [k for k, m in self._monitors.items() if m is mon]:
                            self._monitors.pop(key, None)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in monitors:
                sock.close(0)
            zap.close(0)

    def _drain_monitor(self, mon: _Monitor) -> bool:
        while True:
            try:
                frames = mon.pair.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return True
            try:
                event, value = parse_event(frames)
                if not mon.on_event(event, value, self.log):
                    return False
            except Exception as exc:  # a report must never stop the guard
                self.log._write(f"guard: bad monitor event: {exc!r}")

    def _answer_zap(self, zap: zmq.Socket) -> None:
        """ZAP 1.0 (RFC 27): [version, request id, domain, address, identity, mechanism,
        credentials...] -> [version, request id, status, text, user id, metadata]."""
        frames = zap.recv_multipart()
        version = frames[0] if frames else b"1.0"
        request_id = frames[1] if len(frames) > 1 else b""
        status, text = b"400", b"denied"
        try:
            address = frames[3].decode(errors="replace")
            mechanism = frames[5]
            if mechanism != b"CURVE":
                reason = f"mechanism {mechanism.decode(errors='replace')} is not allowed"
            elif len(frames) < 7 or frames[6] != self.client_key:
                reason = "unknown CURVE client key (the peer does not hold the cluster token)"
            else:
                status, text, reason = b"200", b"OK", ""
            if reason:  # the ZAP domain of our server sockets is their endpoint
                self.log.refused(frames[2].decode(errors="replace") or "a server socket",
                                 address, reason)
        except Exception as exc:
            self.log._write(f"guard: malformed ZAP request refused: {exc!r}")
        zap.send_multipart([version, request_id, status, text, b"", b""])


def parse_event(frames: list) -> tuple[int, int]:
    """(event, value) of a socket monitor message (libzmq's v1 format: a frame of
    uint16 event + uint32 value in native order, then the endpoint). Parsed here rather
    than with zmq.utils.monitor, which imports zmq.asyncio into every process."""
    return struct.unpack("=HI", frames[0][:6])


_guards: dict[int, Guard] = {}
_guards_lock = threading.Lock()


def guard(ctx: zmq.Context, client_public_z85: bytes) -> Guard:
    """This process's guard for ``ctx``, started on first use (never shared over fork)."""
    with _guards_lock:
        g = _guards.get(os.getpid())
        if g is None or g.ctx is not ctx or not g.thread.is_alive():
            g = _guards[os.getpid()] = Guard(ctx, client_public_z85)
        else:
            g.set_client_key(client_public_z85)
        return g
