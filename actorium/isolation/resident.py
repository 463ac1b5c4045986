"""A resident jail: one sandbox that lives as long as a sandboxed actor and serves its calls.

Runs in a handler child of the sandbox zygote (``service``), which forwards messages
between it and the raylet over a SEQPACKET socket (``channel`` framing):

    <- {"op": "call", "id": n, "payload": pickled (method, args, kwargs)}
    <- {"op": "close"}                         (or the socket closing)
    -> {"op": "opened", "sid": s, "ok": bool, "error": dict | None, "violation": str | None}
    -> {"op": "result", "sid": s, "id": n, "ok": True,
        "result": {value, error, stdout, stderr, violation}}
    -> {"op": "closed", "sid": s, "violation": str | None, "exit_code": int}

Invariants
----------
* Calls run one at a time, in arrival order; each gets ``policy.wall_seconds`` of wall
  time and ``policy.max_output_bytes`` of output (stdout + stderr + value).  Memory,
  processes and open files are limits of the jail as a whole; ``cpu_seconds`` is the CPU
  budget of the jail's whole life (an rlimit of its process).
* A limit hit kills the jail: the call in progress is answered with the violation, every
  queued call with an error naming it, then ``closed`` is sent and this process exits.
  Nothing the jail produced is unpickled here; envelopes are checked with plain msgpack
  and values are passed on as codec bytes.
"""
from __future__ import annotations

import collections
import os
import select
import socket
import time

from . import calls
from .runner import classify, exit_status, run_jailed

__all__ = ["serve"]


class _Calls:
    """Bookkeeping of one resident jail's calls (the trusted side)."""

    def __init__(self, sid, sock: socket.socket, policy):
        self.sid, self.sock, self.policy = sid, sock, policy
        self.queue: collections.deque = collections.deque()
        self.current = None          # call id in the jail now
        self.deadline = None         # its wall-time deadline (or the constructor's)
        self.ready = False
        self.closing = False
        self.opened_sent = False

    def send(self, msg) -> None:
        from .channel import pack_frames
        for frame in pack_frames({**msg, "sid": self.sid}):
            self.sock.send(frame)


def serve(req: dict, sock: socket.socket) -> None:
    """Open the jail described by ``req`` (``op: open``), serve it, report, return."""
    from .channel import policy_from_dict
    sock.setblocking(True)
    policy = policy_from_dict(req.get("policy") or {})
    state = _Calls(req.get("sid"), sock, policy)
    payload = req["payload"]
    call_r, call_w = os.pipe2(os.O_CLOEXEC)

    def body(res_fd: int) -> int:
        return calls.resident_body(payload, call_r, res_fd)
    body.job = {"kind": "resident", "payload": payload, "call_fd": call_r}

    def collect(col, names, deadline):
        state.deadline = deadline
        _loop(state, col, names, call_w)

    col, stats, _ = run_jailed(body, policy, {"call": (call_w, call_r)}, collect)
    try:
        os.close(call_w)
    except OSError:
        pass
    try:
        exit_code, signum, details = exit_status(col, stats)
        violation = classify(col, stats, policy, exit_code, signum, details, None)
    except Exception as exc:  # jail setup failed
        if not state.opened_sent:
            state.send({"op": "opened", "ok": False, "violation": None,
                        "error": {"type": "SandboxError", "module": "actorium",
                                  "message": str(exc), "traceback": ""}})
        state.send({"op": "closed", "violation": None, "exit_code": -1})
        return
    if col.kill_reason == "closed":
        violation = None
    if not state.opened_sent:
        state.send({"op": "opened", "ok": False, "violation": violation, "error": {
            "type": "SandboxError", "module": "actorium", "traceback": "",
            "message": f"the sandboxed actor's jail ended during construction "
                       f"(exit code {exit_code}, limit hit: {violation})"}})
    elif state.current is not None:
        state.send({"op": "result", "id": state.current, "ok": True, "result": {
            "value": None, "error": None, "violation": violation or "exited",
            "stdout": _text(col, "stdout"), "stderr": _text(col, "stderr")}})
    for call_id, _ in state.queue:
        state.send({"op": "result", "id": call_id, "ok": False,
                    "error": f"the sandboxed actor's jail ended ({violation or 'closed'})"})
    state.send({"op": "closed", "violation": violation, "exit_code": exit_code})


def _text(col, name: str) -> str:
    data = bytes(col.bufs.pop(name, b""))
    return data.decode("utf-8", "replace")


def _loop(state: _Calls, col, names: dict, call_w: int) -> None:
    """Serve calls until the jail's keeper exits (it exits when the jail ends)."""
    from .channel import RECV_SIZE, FrameReader
    frames = calls.FrameBuffer(state.policy.max_output_bytes + 4096)
    reader = FrameReader()
    result_fd = next(fd for fd, n in names.items() if n == "result")
    pidfd = os.pidfd_open(col.pid)
    poller = select.poll()
    for fd in names:
        poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    poller.register(state.sock.fileno(), select.POLLIN)
    try:
        while True:
            now = time.monotonic()
            if state.deadline is not None and now >= state.deadline:
                col.kill("wall_time")
                state.deadline = None
            if col.terminate_at is not None and now >= col.terminate_at + 1.0:
                col.force()
                col.terminate_at = float("inf")
            wake = [t for t in (state.deadline, col.terminate_at and col.terminate_at + 1.0)
                    if t is not None and t != float("inf")]
            timeout = max(0, int((min(wake) - now) * 1000)) + 1 if wake else 1000
            for fd, _ in poller.poll(timeout):
                if fd == pidfd:
                    return
                if fd == state.sock.fileno():
                    if not _on_request(state, col, reader, poller, RECV_SIZE):
                        poller.unregister(fd)
                    continue
                data = os.read(fd, 1 << 16)
                if not data:
                    poller.unregister(fd)
                    continue
                if fd != result_fd:
                    col.feed(names[fd], data)
                    continue
                try:
                    done = frames.feed(data)
                except ValueError:
                    col.kill("output")
                    continue
                if done:
                    _drain(col, names, result_fd)  # output written before the envelope
                for frame in done:
                    _on_envelope(state, col, frame)
            if state.ready and state.current is None and state.queue and not state.closing:
                call_id, payload = state.queue.popleft()
                state.current = call_id
                state.deadline = time.monotonic() + state.policy.wall_seconds
                col.out_total = 0
                try:
                    calls.write_frame(call_w, payload)
                except OSError:
                    pass  # the jail is gone; its keeper's exit ends the loop
    finally:
        os.close(pidfd)


def _drain(col, names: dict, result_fd: int) -> None:
    for fd, name in names.items():
        if fd == result_fd:
            continue
        try:
            while select.select([fd], [], [], 0)[0]:
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                col.feed(name, data)
        except OSError:
            pass


def _on_request(state: _Calls, col, reader, poller, recv_size: int) -> bool:
    """Read requests from the zygote; False once the channel is closed."""
    try:
        packet = state.sock.recv(recv_size, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        packet = b""
    msg = None
    if packet:
        try:
            msg = reader.feed(packet)
        except ValueError:
            packet = b""
    if not packet or (msg is not None and msg.get("op") == "close"):
        state.closing = True
        col.kill("closed")
        return bool(packet)
    if msg is not None and msg.get("op") == "call":
        state.queue.append((msg.get("id"), msg.get("payload") or b""))
    return True


def _on_envelope(state: _Calls, col, frame: bytes) -> None:
    max_bytes = state.policy.max_output_bytes + 1024
    try:
        env = calls.read_envelope(frame, max_bytes)
    except ValueError as exc:
        env = {"value": None, "error": {"type": "SandboxError", "module": "actorium",
                                        "message": f"malformed reply from the sandbox: {exc}",
                                        "traceback": ""}}
    if not state.ready:
        state.opened_sent = True
        if env.get("ready"):
            state.ready = True
            state.deadline = None
            state.send({"op": "opened", "ok": True, "error": None, "violation": None})
        else:  # the constructor raised; the jail exits by itself
            state.send({"op": "opened", "ok": False, "error": env["error"], "violation": None})
        return
    if state.current is None:
        return
    violation = None
    if (env.get("error") or {}).get("type") == "MemoryError":
        # the address-space limit surfaced as an exception: a limit hit like any other,
        # and the jail (whose heap may be in any state) ends with it
        violation = "memory"
        col.kill("memory")
    result = {"value": env.get("value"), "error": env.get("error"), "violation": violation,
              "stdout": _text(col, "stdout"), "stderr": _text(col, "stderr")}
    state.send({"op": "result", "id": state.current, "ok": True, "result": result})
    state.current = None
    state.deadline = None

