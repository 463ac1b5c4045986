"""ZeroMQ plumbing shared by every process: one context per process, one socket per
(thread, peer), and a blocking request/reply helper with a timeout path.

ZeroMQ sockets are not thread-safe, so sockets are cached per thread; an I/O thread
owns the sockets it polls. Messages are single frames produced by ``protocol.encode``.

Every socket is created here, and every ``tcp://`` one is secured here (``secure``):
CURVE with keys derived from the cluster token (``core/wire/auth.py``), a ZAP check and a
refusal log on servers (``core/wire/guard.py``), and a maximum message size. ``ipc://``
sockets live in the owner-only session directory and are not authenticated.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import traceback

import zmq

from actorium.core.wire import auth, protocol

_ctx: zmq.Context | None = None
_ctx_pid = 0
_ctx_lock = threading.Lock()
_req_ids = itertools.count(1)
_local = threading.local()
# Largest message a TCP peer may send; a larger frame drops the connection in libzmq
# before it is read. Cluster traffic stays far below (bulk data moves in chunks).
MAX_TCP_MESSAGE = int(os.environ.get("ACTORIUM_MAX_MESSAGE_BYTES", 512 << 20))
HANDSHAKE_TIMEOUT_MS = 10_000  # a TCP peer that has not authenticated by then is dropped


def context() -> zmq.Context:
    """The process's ZeroMQ context, created on first use (never inherited over fork)."""
    global _ctx, _ctx_pid
    if _ctx is None or _ctx_pid != os.getpid():
        with _ctx_lock:
            if _ctx is None or _ctx_pid != os.getpid():
                _ctx = zmq.Context(io_threads=1)
                _ctx_pid = os.getpid()
                _local.__dict__.clear()
    return _ctx


def next_req_id() -> int:
    return next(_req_ids)


def configure(sock: zmq.Socket) -> zmq.Socket:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    return sock


def secure(sock: zmq.Socket, addr: str, server: bool) -> zmq.Socket:
    """Make ``sock`` authenticate its peers if ``addr`` is TCP; call before bind/connect.

    Servers present the cluster's server key and accept only clients holding the
    cluster's client key (checked by the guard over ZAP; with ZAP_ENFORCE_DOMAIN a
    missing guard refuses everyone); clients present the client key and expect the
    server key. A client uses the token recorded for ``addr`` (a cluster this process
    started, ``auth.remember_cluster_token``), else the process's token. Raises
    AuthenticationError when there is no token."""
    if not addr.startswith("tcp://"):
        return sock
    keys = auth.curve_keys(None if server else auth.known_cluster_token(addr))
    current = sock.getsockopt(zmq.MAXMSGSIZE)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_TCP_MESSAGE if current < 0
                    else min(current, MAX_TCP_MESSAGE))
    if server:
        from actorium.core.wire import guard  # only processes with a TCP server run one
        process_guard = guard.guard(context(), keys.client_public)
        sock.curve_server = True
        sock.curve_secretkey = keys.server_secret
        sock.curve_publickey = keys.server_public
        sock.zap_domain = addr.encode()[:254]
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_TIMEOUT_MS)
        process_guard.watch(sock, addr)
    else:
        sock.curve_serverkey = keys.server_public
        sock.curve_publickey = keys.client_public
        sock.curve_secretkey = keys.client_secret
    return sock


def bind_router(addr: str, max_message: int = -1) -> zmq.Socket:
    sock = configure(context().socket(zmq.ROUTER))
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message)
    try:
        secure(sock, addr, server=True)
        sock.bind(addr)
    except BaseException:
        sock.close(0)
        raise
    if addr.startswith("tcp://") and addr.endswith(":*"):  # tell the guard the real port
        from actorium.core.wire import guard
        guard.guard(context(), auth.curve_keys().client_public).bound(
            sock, sock.getsockopt_string(zmq.LAST_ENDPOINT))
    return sock


def endpoint(session_dir: str, host: str, name: str) -> str:
    """Where a process should listen: ``tcp://<host>:*`` (a random port, bound by
    ``bind_router_at``) when its node talks to other nodes, else an ipc path in the
    session directory (a purely local cluster keeps the faster ipc)."""
    if host:
        return f"tcp://{host}:*"
    return f"ipc://{session_dir}/sockets/{name}"


def bind_router_at(addr: str) -> tuple[zmq.Socket, str]:
    """Bind a ROUTER to ``addr`` (which may end in ``:*`` for a random TCP port) and
    return it with the concrete address peers must connect to."""
    sock = bind_router(addr)
    if addr.startswith("tcp://"):
        addr = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    return sock, addr


def local_ip_towards(host: str) -> str:
    """The address of this machine's interface that routes to ``host`` (no packet sent)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def peer_reachable(addr: str, timeout: float = 0.5) -> bool:
    """Whether something still listens at a ZeroMQ ``tcp://`` or ``ipc://`` address.
    Used only after a node death, to tell whether a remote owner went with it."""
    import socket
    try:
        if addr.startswith("ipc://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(addr[6:])
            return True
        if addr.startswith("tcp://"):
            host, port = addr[6:].rsplit(":", 1)
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
    except OSError:
        return False
    return True


def connect_dealer(addr: str) -> zmq.Socket:
    sock = configure(context().socket(zmq.DEALER))
    try:
        secure(sock, addr, server=False)
    except BaseException:
        sock.close(0)
        raise
    sock.connect(addr)
    return sock


class RouterGroup:
    """ROUTERs bound to several addresses (say a local ipc one and an authenticated tcp
    one) used as one socket. Identities handed out are prefixed with one byte, the
    index of the router the peer is connected to, and ``send_multipart`` strips it to
    route the reply back through the same router."""

    def __init__(self, addrs: list[str], max_message: int = -1):
        self.socks = []
        try:
            for addr in addrs:
                self.socks.append(bind_router(addr, max_message))
        except BaseException:
            self.close()
            raise

    def pending(self):
        """Like ``pending(sock, router=True)`` over every router."""
        for index, sock in enumerate(self.socks):
            for identity, data in pending(sock, True):
                yield bytes([index]) + identity, data

    def send_multipart(self, frames, copy: bool = True, **kwargs) -> None:
        identity = frames[0]
        self.socks[identity[0]].send_multipart([identity[1:], *frames[1:]], copy=copy,
                                               **kwargs)

    def close(self) -> None:
        for sock in self.socks:
            sock.close(0)


def tcp_reachable(addr: str, timeout: float) -> bool:
    """Whether anything accepts a TCP connection at ``tcp://host:port`` (no handshake:
    the server logs it as a refused peer)."""
    import socket
    host, _, port = addr[len("tcp://"):].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def handshake(addr: str, timeout: float = 5.0) -> None:
    """Connect to the TCP server at ``addr`` and complete the authenticated handshake.

    Returns once it succeeded. Raises ``AuthenticationError`` when the server refuses
    this process's token, and ``ConnectionError`` when nothing accepts a connection (or
    finishes the handshake) within ``timeout`` seconds."""
    from actorium.core.wire.guard import parse_event
    from actorium.exceptions import AuthenticationError
    token = auth.process_token()
    ctx = context()
    sock = configure(ctx.socket(zmq.DEALER))
    mon_addr = f"inproc://actorium-handshake-{os.getpid()}-{next(_req_ids)}"
    sock.monitor(mon_addr, zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                 | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    mon = ctx.socket(zmq.PAIR)
    mon.setsockopt(zmq.LINGER, 0)
    mon.connect(mon_addr)
    connected = False
    try:
        secure(sock, addr, server=False)
        sock.connect(addr)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not mon.poll(int(remaining * 1000) + 1):
                continue
            event, _ = parse_event(mon.recv_multipart())
            if event == zmq.EVENT_CONNECTED:
                connected = True
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
            else:
                raise AuthenticationError(
                    f"the actorium cluster at {addr} refused this process's credentials: "
                    f"the cluster token (from {token.source}) is not the token of that "
                    f"cluster (or that address is not an actorium cluster)")
        if connected:
            raise ConnectionError(f"{addr} accepted a connection but did not complete the "
                                  f"authenticated handshake within {timeout:g}s")
        raise ConnectionError(f"nothing accepted a connection at {addr} within {timeout:g}s")
    finally:
        sock.disable_monitor()
        mon.close(0)
        sock.close(0)


def thread_dealer(addr: str) -> zmq.Socket:
    """A DEALER to ``addr`` owned by the calling thread (created on first use)."""
    context()  # may reset the per-thread cache (after fork): must run before reading it
    socks = getattr(_local, "socks", None)
    if socks is None or getattr(_local, "pid", 0) != os.getpid():
        socks = _local.socks = {}
        _local.pid = os.getpid()
    sock = socks.get(addr)
    if sock is None:
        sock = socks[addr] = connect_dealer(addr)
    return sock


def send(addr: str, msg) -> None:
    """Fire-and-forget ``msg`` to ``addr`` from the calling thread."""
    thread_dealer(addr).send(protocol.encode(msg), copy=False)


def close_thread_sockets() -> None:
    for sock in getattr(_local, "socks", {}).values():
        sock.close(0)
    _local.socks = {}


class RpcError(Exception):
    """The peer answered with an error."""


def rpc(addr: str, msg, timeout: float = 30.0, what: str = "") -> object:
    """Send a request carrying ``msg.req_id`` and wait for its Reply.

    Raises ``TimeoutError`` if nothing arrives in ``timeout`` seconds (the socket is then
    discarded, so a late reply cannot be mistaken for the next call's) and ``RpcError``
    if the peer reports an error.
    """
    sock = thread_dealer(addr)
    sock.send(protocol.encode(msg), copy=False)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sock.poll(int(remaining * 1000) + 1):
            if time.monotonic() < deadline:
                continue
            getattr(_local, "socks", {}).pop(addr, None)
            sock.close(0)
            raise TimeoutError(f"no answer from {what or addr} within {timeout:g}s "
                               f"to {msg.op}")
        reply = protocol.decode(sock.recv())
        if isinstance(reply, protocol.Reply) and reply.req_id == msg.req_id:
            if not reply.ok:
                raise RpcError(reply.value)
            return reply.value


def reply_to(router: zmq.Socket, identity: bytes, req_id: int, value=None,
             ok: bool = True) -> None:
    router.send_multipart([identity, protocol.encode(protocol.Reply(req_id, ok, value))],
                          copy=False)


def pending(sock: zmq.Socket, router: bool):
    """Yield ``(identity, data)`` for every message already waiting on ``sock``, without
    blocking. ``identity`` is None for a DEALER; ROUTER messages that are not exactly
    ``[identity, data]`` are not ours and are skipped."""
    while True:
        try:
            if not router:
                yield None, sock.recv(zmq.NOBLOCK)
                continue
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        if len(frames) == 2:
            yield frames[0], frames[1]


def pending_frames(sock: zmq.Socket):
    """Like ``pending`` for a ROUTER, but also yields messages with a payload frame:
    ``(identity, data, payload)`` where payload is a zero-copy Frame or None."""
    while True:
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        if len(frames) == 2:
            yield frames[0].bytes, frames[1].buffer, None
        elif len(frames) == 3:
            yield frames[0].bytes, frames[1].buffer, frames[2]


def message_only(handlers: dict) -> dict:
    """Adapt handlers taking only the message to dispatch's (identity, msg) call."""
    return {cls: (lambda fn: lambda _identity, msg: fn(msg))(fn) for cls, fn in handlers.items()}


def dispatch(handlers: dict, identity, data, who: str, router: zmq.Socket | None = None) -> None:
    """Decode one message and run ``handlers[type(msg)](identity, msg)``.

    Undecodable bytes are logged and dropped. A handler that raises is logged; if the
    message was a request and ``router`` can answer, the requester gets an error Reply
    instead of waiting for its timeout."""
    try:
        msg = protocol.decode(data)
    except protocol.ProtocolError as exc:
        print(f"{who}: dropped bad message: {exc}", file=sys.stderr)
        return
    handler = handlers.get(type(msg))
    if handler is None:
        return
    try:
        handler(identity, msg)
    except Exception as exc:
        traceback.print_exc()
        req_id = getattr(msg, "req_id", None)
        if router is not None and identity is not None and req_id is not None:
            reply_to(router, identity, req_id, f"{type(exc).__name__}: {exc}", ok=False)
