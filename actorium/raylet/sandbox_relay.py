"""The raylet's end of the node's sandbox zygote: routes sandbox requests and replies.

Clients (drivers and workers) send ``RunSandbox``, ``CancelSandbox``, ``SandboxOpen``,
``SandboxCall`` and ``SandboxClose`` (actorium.core.wire.protocol) to their raylet; this relay
forwards them to the sandbox zygote (actorium.isolation.service) under ids of its own,
and answers each request with one Reply when the zygote reports back.

Invariants
----------
* Every request gets exactly one Reply: a result, or ``ok=False`` with a reason when the
  zygote is unreachable, exits, or the resident jail is gone.
* Payloads are opaque here: nothing is unpickled or codec-decoded in the raylet.
* A worker's one-shot sandboxes are cancelled and its resident jails closed when the
  worker exits (``worker_gone``), so nothing outlives the process that asked for it.
* When the zygote dies it is started again (at most once per ``RESTART_INTERVAL``);
  requests in flight at that moment fail, later ones are served by the new zygote.
"""
from __future__ import annotations

import socket
import sys
import time

from actorium.isolation import channel

RESTART_INTERVAL = 1.0


class SandboxRelay:
    def __init__(self, sock: socket.socket | None, pid: int, log_path: str, reply):
        self.sock = sock
        self.pid = pid
        self.log_path = log_path
        self.reply = reply            # reply(identity, req_id, value, ok=True)
        self.reader = channel.FrameReader()
        self.next_id = 1
        self.pending: dict[int, tuple] = {}      # run/call id -> (identity, req_id, kind)
        self.by_request: dict[tuple, int] = {}   # (identity, req_id) -> run id
        self.runs_of: dict[bytes, set] = {}      # worker id -> its one-shot run ids
        self.residents: dict[int, bytes] = {}    # sid -> owning worker id
        self.closed: dict[int, str] = {}         # sid -> why its jail ended (recent ones)
        self.last_restart = 0.0
        self.metrics = None  # the raylet's NodeMetrics: sandbox starts and violations

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def _id(self) -> int:
        n = self.next_id
        self.next_id += 1
        return n

    def _send(self, msg) -> bool:
        """Send to the zygote, restarting it first if it died (once per request)."""
        for _attempt in range(2):
            if self.sock is None and not self._restart():
                return False
            try:
                channel.send_blocking(self.sock, msg)
                return True
            except OSError as exc:
                print(f"raylet: sandbox zygote unreachable: {exc}", file=sys.stderr)
                self.lost()
        return False

    # -- requests -----------------------------------------------------------------
    def on_run(self, identity, msg) -> None:
        self._count_start()
        run_id = self._id()
        self.pending[run_id] = (identity, msg.req_id, "run")
        self.by_request[(identity, msg.req_id)] = run_id
        self.runs_of.setdefault(msg.worker_id, set()).add(run_id)
        if msg.call:
            out = {"op": "call", "id": run_id, "payload": msg.call, "policy": msg.policy}
        else:
            out = {"op": "run", "id": run_id, "code": msg.code, "policy": msg.policy,
                   "inputs": msg.inputs or None}
        if not self._send(out):
            self._fail(run_id, "this node's sandbox zygote is unavailable")

    def on_cancel(self, identity, msg) -> None:
        run_id = self.by_request.get((identity, msg.req_id))
        if run_id is not None:
            self._send({"op": "cancel", "id": run_id})

    def on_open(self, identity, msg) -> None:
        self._count_start()
        sid = self._id()
        self.pending[sid] = (identity, msg.req_id, "open")
        self.residents[sid] = msg.worker_id
        if not self._send({"op": "open", "sid": sid, "payload": msg.payload,
                           "policy": msg.policy}):
            self.residents.pop(sid, None)
            self._fail(sid, "this node's sandbox zygote is unavailable")

    def on_call(self, identity, msg) -> None:
        if msg.sid not in self.residents:
            why = self.closed.get(msg.sid, "no such sandboxed actor on this node")
            self.reply(identity, msg.req_id, f"the sandboxed actor's jail ended ({why})", ok=False)
            return
        call_id = self._id()
        self.pending[call_id] = (identity, msg.req_id, "call")
        if not self._send({"op": "rcall", "sid": msg.sid, "id": call_id,
                           "payload": msg.payload}):
            self._fail(call_id, "this node's sandbox zygote is unavailable")

    def on_close(self, identity, msg) -> None:
        if self.residents.pop(msg.sid, None) is not None:
            self._send({"op": "close", "sid": msg.sid})

    def worker_gone(self, worker_id: bytes) -> None:
        for run_id in self.runs_of.pop(worker_id, ()):
            if run_id in self.pending:
                self._send({"op": "cancel", "id": run_id})
        for sid, owner in list(self.residents.items()):
            if owner == worker_id:
                self.residents.pop(sid)
                self._send({"op": "close", "sid": sid})

    # -- replies --------------------------------------------------------------------
    def readable(self) -> None:
        while self.sock is not None:
            try:
                packet = self.sock.recv(channel.RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                packet = b""
            if not packet:
                self.lost()
                return
            try:
                msg = self.reader.feed(packet)
            except Exception as exc:
                print(f"raylet: bad frame from the sandbox zygote: {exc}", file=sys.stderr)
                self.lost()
                return
            if msg is not None:
                self._on_message(msg)

    def _count_start(self) -> None:
        if self.metrics is not None:
            self.metrics.sandbox_started()

    def _count_violation(self, msg: dict) -> None:
        """Count a violation reported in a zygote message (a run's or call's result,
        an opened or closed jail), for the node's metrics."""
        metrics = self.metrics
        result = msg.get("result")
        violation = msg.get("violation") or (
            result.get("violation") if isinstance(result, dict) else None)
        if metrics is not None and violation:
            metrics.sandbox_violation(violation, msg.get("op") or "")

    def _on_message(self, msg: dict) -> None:
        op = msg.get("op")
        if op != "closed":  # a jail's end repeats the violation its last call reported
            self._count_violation(msg)
        if op == "closed":
            sid = msg.get("sid")
            self.residents.pop(sid, None)
            self.closed[sid] = msg.get("violation") or "closed"
            if len(self.closed) > 10000:
                self.closed.pop(next(iter(self.closed)))
            if sid in self.pending:  # closed before it ever opened
                self._fail(sid, f"the sandboxed actor's jail ended ({self.closed[sid]})")
            return
        key = msg.get("sid") if op == "opened" else msg.get("id")
        waiter = self.pending.pop(key, None)
        if waiter is None:
            return
        identity, req_id, kind = waiter
        self.by_request.pop((identity, req_id), None)
        if op == "opened":
            if not msg.get("ok"):
                self.residents.pop(key, None)
            self.reply(identity, req_id, {"sid": key, "ok": bool(msg.get("ok")),
                                          "error": msg.get("error"),
                                          "violation": msg.get("violation")})
        elif msg.get("ok"):
            self.reply(identity, req_id, msg.get("result"))
        elif msg.get("cancelled"):
            self.reply(identity, req_id, "cancelled", ok=False)
        else:
            self.reply(identity, req_id, str(msg.get("error")), ok=False)

    def _fail(self, key: int, why: str) -> None:
        waiter = self.pending.pop(key, None)
        if waiter is not None:
            self.by_request.pop((waiter[0], waiter[1]), None)
            self.reply(waiter[0], waiter[1], why, ok=False)

    # -- the zygote's life ----------------------------------------------------------
    def lost(self) -> None:
        """The zygote exited (or its channel broke): fail what was in flight."""
        if self.sock is None:
            return
        print("raylet: the sandbox zygote exited; it will be restarted on the next request",
              file=sys.stderr)
        sock, self.sock = self.sock, None
        try:
            sock.close()
        except OSError:
            pass
        channel.reap(self.pid)
        for key in list(self.pending):
            self._fail(key, "the sandbox zygote exited")
        for sid in self.residents:
            self.closed[sid] = "the sandbox zygote exited"
        self.residents.clear()
        self.runs_of.clear()
        self.reader = channel.FrameReader()

    def _restart(self) -> bool:
        now = time.monotonic()
        if now - self.last_restart < RESTART_INTERVAL:
            return False
        self.last_restart = now
        try:
            self.pid, self.sock = channel.spawn(self.log_path)
        except OSError as exc:
            print(f"raylet: could not restart the sandbox zygote: {exc}", file=sys.stderr)
            return False
        return True

    def stop(self) -> None:
        if self.sock is not None:
            channel.stop(self.pid, self.sock)
            self.sock = None
