"""The fork server: a single-threaded, pre-imported process that forks workers.

Forking a warm interpreter takes a few milliseconds instead of the ~100 ms of starting
Python and importing the runtime. The zygote must never start threads or ZeroMQ (both
break across fork), so it speaks to the raylet over a plain SOCK_SEQPACKET socketpair
with msgpack frames: ``{"op": "fork", "worker_id", "config"}`` -> ``{"op": "forked",
"worker_id", "pid"}``, and reports every child exit as ``{"op": "exited", "pid",
"status"}``. When the raylet goes away the zygote kills its children and exits.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import sys

import msgpack

from actorium.isolation._sys import die_with_parent


def serve(sock: socket.socket, log_dir: str) -> None:
    """Run the zygote loop on ``sock`` until the raylet closes it. Never returns."""
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    while True:
        try:
            readable, _, _ = select.select([sock, rfd], [], [], 1.0)
        except InterruptedError:
            readable = [rfd]
        if rfd in readable:
            try:
                os.read(rfd, 4096)
            except BlockingIOError:
                pass
        _reap(sock, children)
        if sock in readable:
            data = sock.recv(1 << 20)
            if not data:
                break
            req = msgpack.unpackb(data)
            if req["op"] == "fork":
                pid = os.fork()
                if pid == 0:
                    _child(sock, rfd, wfd, req, log_dir)
                children.add(pid)
                sock.send(msgpack.packb({"op": "forked", "worker_id": req["worker_id"], "pid": pid}))
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os._exit(0)


def _reap(sock: socket.socket, children: set) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        try:
            sock.send(msgpack.packb({"op": "exited", "pid": pid, "status": status}))
        except OSError:
            pass


def _child(sock, rfd, wfd, req, log_dir: str) -> None:
    """In the forked worker: drop the zygote's plumbing, then become a worker."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        os.close(rfd)
        os.close(wfd)
        die_with_parent()
        wid = req["worker_id"]
        out = os.open(os.path.join(log_dir, f"worker-{wid}.log"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        config = req["config"]
        config["worker_id"] = wid
        from actorium.core.worker import worker_main
        worker_main.main(config)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(1)
