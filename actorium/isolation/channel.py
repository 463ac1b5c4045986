"""The channel between a raylet and its node's sandbox zygote, and the zygote's process.

Framing: the zygote and the raylet exchange msgpack maps over a SOCK_SEQPACKET socketpair
(the message protocol is in ``actorium.isolation.service``). A message larger than one
packet is split into packets: each packet is one flag byte (``b"M"`` more follows,
``b"E"`` end of message) plus a chunk (``pack_frames``, ``FrameReader``); one direction of
one socket never interleaves messages.

Process: ``start`` (fork + exec, from the still single-threaded node process) and
``spawn`` (subprocess, from the running raylet when a zygote died) both exec a clean
interpreter with an allowlisted environment and only the channel fd; ``stop`` and
``reap`` end and collect it.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time

import msgpack

__all__ = ["pack_frames", "FrameReader", "send_blocking", "start", "spawn", "reap", "stop",
           "policy_to_dict", "policy_from_dict", "CHUNK", "RECV_SIZE", "STOP_GRACE"]

CHUNK = 60000           # payload bytes per packet (well under the socket buffer)
RECV_SIZE = 1 << 17     # >= CHUNK + 1: a SEQPACKET recv truncates shorter buffers
STOP_GRACE = 2.0        # seconds handlers get to clean up after SIGTERM at shutdown
_ENV_KEEP = ("PYTHONPATH",)  # needed to import actorium from a source checkout


def pack_frames(msg) -> list[bytes]:
    data = msgpack.packb(msg, use_bin_type=True)
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    return [b"M" + c for c in chunks[:-1]] + [b"E" + chunks[-1]]


class FrameReader:
    """Reassembles messages from packets; ``feed(packet)`` returns a message or None."""

    def __init__(self, max_bytes: int = 256 << 20):
        self.buf = bytearray()
        self.max_bytes = max_bytes

    def feed(self, packet: bytes):
        if not packet or packet[:1] not in (b"M", b"E"):
            raise ValueError("bad sandbox frame")
        self.buf += packet[1:]
        if len(self.buf) > self.max_bytes:
            raise ValueError("sandbox message too large")
        if packet[:1] == b"M":
            return None
        data, self.buf = bytes(self.buf), bytearray()
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


def send_blocking(sock: socket.socket, msg) -> None:
    """Send a whole message on a blocking socket (the raylet's side)."""
    for frame in pack_frames(msg):
        sock.send(frame)


def start(log_path: str) -> tuple[int, socket.socket]:
    """Fork + exec the sandbox zygote; return (pid, the raylet's end of the channel).

    Call from the node process while it is still single-threaded and before ZeroMQ/LMDB.
    """
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = _environment()
    argv = [sys.executable, "-m", "actorium.isolation.service", str(child_sock.fileno())]
    pid = os.fork()
    if pid == 0:
        try:
            parent_sock.close()
            from actorium.isolation._sys import die_with_parent
            die_with_parent()
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            keep = child_sock.fileno()
            os.set_inheritable(keep, True)
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    child_sock.close()
    return pid, parent_sock


def _environment() -> dict:
    from .jail import ENV_ALLOWLIST
    env = dict(ENV_ALLOWLIST)
    env.update({k: os.environ[k] for k in _ENV_KEEP if k in os.environ})
    # keep BLAS (should numpy ever be imported here) from starting threads
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


_spawned: dict = {}  # pid -> Popen, kept so Popen's finalizer never reaps behind our back


def spawn(log_path: str) -> tuple[int, socket.socket]:
    """Like ``start``, but safe from a process with threads (the raylet restarting a
    zygote that died): the fork + exec happens in C (subprocess), no Python runs between.
    The new zygote arms its parent-death signal itself (``serve``)."""
    import subprocess
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [sys.executable, "-m", "actorium.isolation.service", str(child_sock.fileno())]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, env=_environment(), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, pass_fds=(child_sock.fileno(),),
                                    close_fds=True)
    except BaseException:
        parent_sock.close()
        raise
    finally:
        child_sock.close()
    _spawned[proc.pid] = proc
    return proc.pid, parent_sock


def reap(pid: int, timeout: float = 2.0) -> None:
    """Wait for a zygote that is exiting (or kill it after ``timeout``)."""
    proc = _spawned.pop(pid, None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            break
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            break
        time.sleep(0.01)
    if proc is not None:
        proc.returncode = -1  # reaped above; keep Popen from waiting on a reused pid


def stop(pid: int, sock: socket.socket, timeout: float = STOP_GRACE + 1.0) -> None:
    """Node shutdown: close the channel, let the zygote end its sandboxes, then kill it."""
    try:
        sock.close()
    except OSError:
        pass
    reap(pid, timeout)


def policy_to_dict(policy) -> dict:
    """A SandboxPolicy as plain msgpack-able fields."""
    from dataclasses import fields
    out = {}
    for f in fields(policy):
        v = getattr(policy, f.name)
        if f.name in ("files", "env"):
            v = dict(v)
        elif f.name == "allowed_paths":
            v = list(v)
        out[f.name] = v
    return out


def policy_from_dict(d: dict):
    from .policy import SandboxPolicy
    d = dict(d)
    if "allowed_paths" in d:
        d["allowed_paths"] = tuple(d["allowed_paths"])
    return SandboxPolicy(**d)
