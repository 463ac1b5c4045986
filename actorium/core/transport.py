"""ZeroMQ plumbing shared by every process: one context per process, one socket per
(thread, peer), and a blocking request/reply helper with a timeout path.

ZeroMQ sockets are not thread-safe, so sockets are cached per thread; an I/O thread
owns the sockets it polls. Messages are single frames produced by ``protocol.encode``.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import traceback

import zmq

from actorium.core import protocol

_ctx: zmq.Context | None = None
_ctx_pid = 0
_ctx_lock = threading.Lock()
_req_ids = itertools.count(1)
_local = threading.local()


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


def bind_router(addr: str) -> zmq.Socket:
    sock = configure(context().socket(zmq.ROUTER))
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.bind(addr)
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
    sock.connect(addr)
    return sock


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
