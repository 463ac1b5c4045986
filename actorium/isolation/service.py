"""The sandbox zygote: one per node, a clean single-threaded process that runs snippets.

Started by the node process before it touches ZeroMQ or LMDB (``start``): fork, then
``execve`` of a fresh interpreter with an allowlisted environment, so this process holds
nothing of the node — no object store, no sockets but its channel to the raylet, no cluster
token, and not even residue of the user's environment in its memory (a forked copy of the
node would carry the exec-time environment block and freed strings; every sandbox is a
fork of this process, so its memory is what a sandbox could read).

Protocol (raylet <-> this process, over a SOCK_SEQPACKET socketpair, msgpack maps):
    -> {"op": "run", "id": n, "code": str, "policy": {plain SandboxPolicy fields},
        "inputs": codec bytes or None}
    -> {"op": "call", "id": n, "payload": pickled (fn bytes, args, kwargs), "policy": {...}}
    <- {"op": "result", "id": n, "ok": True,
        "result": {stdout, stderr, exit_code, value: codec bytes, violation, duration,
                   details [, error]}}
    <- {"op": "result", "id": n, "ok": False, "error": str [, "cancelled": True]}
    -> {"op": "cancel", "id": n}              (a run or call: its sandbox is killed)
Resident jails (sandboxed actors, ``resident``): one handler each, talking to us over
its own socketpair; we route by sandbox id ``sid``:
    -> {"op": "open", "sid": s, "payload": pickled (class bytes, args, kwargs), "policy"}
    -> {"op": "rcall", "sid": s, "id": n, "payload": ...}   -> {"op": "close", "sid": s}
    <- "opened" / "result" / "closed" messages of ``resident``, each carrying its sid
The zygote never unpickles anything: payloads are opaque to it and unpickled only
inside the jail they are meant for.
Messages are framed as described in ``actorium.isolation.channel``.

Invariants
----------
* The loop never blocks: requests are read whenever they arrive, replies are queued and
  sent when the socket is writable (so a raylet blocked sending a large request can never
  deadlock against us blocked sending a large reply).
* Each run happens in its own forked handler child (``run_snippet`` forks and jails from
  there) that reports over a pipe; at most ``MAX_CONCURRENT`` run at once, the rest wait
  in arrival order.
* Every child is reaped; a handler that dies without a complete report yields an
  ``ok: False`` reply, never silence.  When the raylet goes away we kill our children
  (their sandboxes die with them: parent-death signals all the way down) and exit.
"""
from __future__ import annotations

import collections
import errno
import os
import select
import signal
import socket
import sys
import time

import msgpack

from . import _sys
from .channel import (RECV_SIZE, STOP_GRACE, FrameReader, pack_frames, policy_from_dict,
                      send_blocking)
from .warm import SPARES, SparePool

MAX_CONCURRENT = 32
_zygote_pid = 0  # set by serve(): the parent every handler expects

# ---------------------------------------------------------------- the zygote

class _Run:
    __slots__ = ("id", "pid", "fd", "buf", "cancelled")

    def __init__(self, id_, pid, fd):
        self.id, self.pid, self.fd, self.buf = id_, pid, fd, bytearray()
        self.cancelled = False


class _Resident:
    """The zygote's end of one resident jail's handler."""
    __slots__ = ("sid", "pid", "sock", "reader", "closed_seen")

    def __init__(self, sid, pid, sock):
        self.sid, self.pid, self.sock = sid, pid, sock
        self.reader = FrameReader()
        self.closed_seen = False


MAX_RESIDENTS = 800  # select() in this loop: keep well under FD_SETSIZE
def serve(sock: socket.socket) -> None:
    """The zygote loop. Never returns."""
    parent = os.getppid()
    _sys.die_with_parent()
    if os.getppid() != parent:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _zygote_pid
    _zygote_pid = os.getpid()
    _sys.become_subreaper()
    if os.geteuid() == 0:  # leftovers of a predecessor that was killed outright
        from .cgroups import sweep_orphans
        sweep_orphans()
    sock.setblocking(False)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    reader = FrameReader()
    outq: collections.deque[bytes] = collections.deque()
    queued: collections.deque = collections.deque()   # requests waiting for a slot
    runs: dict[int, _Run] = {}                        # pipe read fd -> run
    by_pid: dict[int, _Run] = {}
    finished: dict[int, int] = {}                     # pid -> status, pipe still open
    residents: dict[int, _Resident] = {}              # socket fd -> resident handler
    by_sid: dict = {}
    pool = SparePool()
    closed = False
    stopping_since = 0.0

    def inherited() -> list[int]:
        """Our fds a forked handler must close (it gets only what it is given)."""
        return [sock.fileno(), wake_r, wake_w, *runs, *residents, *pool.fds()]

    def start_run(req, rfd: int, pid: int) -> None:
        run = _Run(req.get("id"), pid, rfd)
        runs[rfd] = run
        by_pid[pid] = run

    def use_spare(req) -> bool:
        spare = pool.take(req)
        if spare is None:
            return False
        pid, req_w, rep_r = spare
        try:
            data = memoryview(msgpack.packb(req, use_bin_type=True))
            while data:  # the spare is blocked reading this pipe: it drains it promptly
                data = data[os.write(req_w, data):]
        except OSError:  # it died meanwhile: serve the request cold
            os.close(rep_r)
            return False
        finally:
            os.close(req_w)
        start_run(req, rep_r, pid)
        return True

    def start_spare() -> None:
        req_r, req_w = os.pipe2(os.O_CLOEXEC)
        rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _spare_handler(pool.policy, req_r, rep_w, inherited() + [req_w, rep_r])
        os.close(req_r)
        os.close(rep_w)
        pool.spares.append((pid, req_w, rep_r))

    def reply(msg) -> None:
        outq.extend(pack_frames(msg))

    def finish(run: _Run, status) -> None:
        try:
            res = msgpack.unpackb(bytes(run.buf), raw=False) if run.buf else None
        except Exception:
            res = None
        if run.cancelled:
            res = {"ok": False, "error": "cancelled", "cancelled": True}
        elif not isinstance(res, dict):
            why = f"handler {_describe(status)}" if status is not None else "no report"
            res = {"ok": False, "error": f"sandbox handler failed without a result ({why})"}
        reply({"op": "result", "id": run.id, **res})

    def open_resident(req) -> None:
        if len(residents) >= MAX_RESIDENTS:
            reply({"op": "opened", "sid": req.get("sid"), "ok": False, "violation": None,
                   "error": {"type": "SandboxError", "module": "actorium", "traceback": "",
                             "message": f"this node already runs {MAX_RESIDENTS} "
                                        f"sandboxed actors"}})
            reply({"op": "closed", "sid": req.get("sid"), "violation": None, "exit_code": -1})
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            mine.close()
            _resident_handler(req, theirs, inherited())
        theirs.close()
        mine.setblocking(False)
        res = _Resident(req.get("sid"), pid, mine)
        residents[mine.fileno()] = res
        by_sid[res.sid] = res

    def route(msg) -> None:
        op = msg.get("op")
        if op in ("run", "call"):
            if queued or len(runs) >= MAX_CONCURRENT or not use_spare(msg):
                queued.append(msg)
        elif op in ("rcall", "close"):
            res = by_sid.get(msg.get("sid"))
            if res is None:
                if op == "rcall":
                    reply({"op": "result", "sid": msg.get("sid"), "id": msg.get("id"),
                           "ok": False, "error": "no such sandboxed actor on this node"})
                return
            try:
                send_blocking(res.sock, {**msg, "op": "call" if op == "rcall" else "close"})
            except OSError:
                pass  # its handler is gone; its socket's EOF reports "closed"
        elif op == "open":
            open_resident(msg)
        elif op == "cancel":
            cancel(msg.get("id"))

    def cancel(run_id) -> None:
        for req in list(queued):
            if req.get("id") == run_id:
                queued.remove(req)
                reply({"op": "result", "id": run_id, "ok": False, "error": "cancelled",
                       "cancelled": True})
                return
        for run in runs.values():
            if run.id == run_id and not run.cancelled:
                run.cancelled = True
                try:
                    os.kill(run.pid, signal.SIGTERM)  # run_snippet cleans up its sandbox
                except ProcessLookupError:
                    pass

    def on_resident(res: _Resident) -> None:
        while True:
            try:
                packet = res.sock.recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError:
                packet = b""
            if packet:
                try:
                    msg = res.reader.feed(packet)
                except ValueError:
                    packet = b""
                else:
                    if msg is not None:
                        res.closed_seen |= msg.get("op") == "closed"
                        reply({**msg, "sid": res.sid})
                    continue
            del residents[res.sock.fileno()]
            by_sid.pop(res.sid, None)
            res.sock.close()
            if not res.closed_seen:
                reply({"op": "closed", "sid": res.sid, "violation": None, "exit_code": -1})
            return

    while not closed or runs or residents:
        while queued and len(runs) < MAX_CONCURRENT:
            req = queued.popleft()
            if use_spare(req):
                continue
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                _handler(req, wfd, inherited() + [rfd])
            os.close(wfd)
            start_run(req, rfd, pid)
        while (not closed and pool.key is not None and len(pool.spares) < SPARES
               and len(runs) + len(pool.spares) < MAX_CONCURRENT):
            start_spare()
        rlist = [wake_r] + list(runs) + list(residents) + ([] if closed else [sock])
        wlist = [sock] if outq and not closed else []
        try:
            readable, writable, _ = select.select(rlist, wlist, [], 1.0)
        except InterruptedError:
            readable, writable = [wake_r], []
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        # reap: a run is done when its pipe hit EOF *and* its handler was reaped
        while True:  # also reaps orphans handed to us as subreaper
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            run = by_pid.pop(pid, None)
            if run is None:
                pool.forget(pid)
            if run is not None:
                if runs.get(run.fd) is run:
                    finished[pid] = status
                else:
                    finish(run, status)
        for fd in readable:
            if fd in residents:
                on_resident(residents[fd])
                continue
            run = runs.get(fd)
            if run is None:
                continue
            data = os.read(fd, 1 << 16)
            if data:
                run.buf += data
                continue
            os.close(fd)
            del runs[fd]
            if run.pid not in by_pid:  # already reaped
                finish(run, finished.pop(run.pid, None))
        if sock in readable:
            while True:
                try:
                    packet = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    packet = b""
                if not packet:
                    closed = True
                    break
                try:
                    msg = reader.feed(packet)
                except Exception as exc:
                    print(f"sandbox zygote: dropped bad frame: {exc}", file=sys.stderr)
                    reader = FrameReader()
                    continue
                if msg is not None:
                    route(msg)
        if closed and not stopping_since:
            # SIGTERM lets each handler's run_snippet kill its sandbox and remove its
            # cgroup; SIGKILL after a grace period (parent-death signals do the rest)
            stopping_since = time.monotonic()
            pool.retire()  # their request pipes close: each ends its jail and exits
            pool.key = None
            _signal_all(by_pid, signal.SIGTERM)
            for res in residents.values():
                _signal_all({res.pid: None}, signal.SIGTERM)
            queued.clear()
        elif stopping_since and time.monotonic() > stopping_since + STOP_GRACE:
            _signal_all(by_pid, signal.SIGKILL)
            _signal_all({r.pid: None for r in residents.values()}, signal.SIGKILL)
        while outq and not closed:
            try:
                sock.send(outq[0])
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                    closed = True
                    break
                raise
            outq.popleft()
    # the raylet is gone and every handler reported (or was killed): reap and exit
    _signal_all(by_pid, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    if os.geteuid() == 0:  # cgroups of handlers that had to be SIGKILLed above
        _sweep_when_empty(1.0)
    os._exit(0)


def _sweep_when_empty(timeout: float) -> None:
    """Remove orphaned sandbox cgroups, waiting (bounded) for their last tasks to go."""
    from .cgroups import orphaned, sweep_orphans
    deadline = time.monotonic() + timeout
    while True:
        sweep_orphans()
        if not orphaned() or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _signal_all(by_pid: dict, sig: int) -> None:
    for pid in list(by_pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _handler_setup(close_fds: list) -> None:
    """First steps of every handler child (forked from the zygote loop)."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # unwinds run_jailed's cleanup
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    # SIGTERM (not SIGKILL) when the zygote dies: the handler unwinds through run_jailed's
    # cleanup, so its jail is killed and its cgroup removed even then
    _sys.die_with_parent(signal.SIGTERM)
    if os.getppid() != _zygote_pid:  # it died before the prctl took effect
        raise SystemExit(0)
    # a sandbox's keeper killed from here orphans the sandbox's init: it must come
    # back to us to be reaped, not to whatever pid 1 is (which may never reap it)
    _sys.become_subreaper()


def _in_handler(close_fds: list, work) -> None:
    """Body of every forked handler child: set up, ``work()``, reap, exit. Never returns."""
    code = 0
    try:
        _handler_setup(close_fds)
        work()
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        _reap_orphans(2.0)
        os._exit(code)


def _resident_handler(req: dict, sock: socket.socket, close_fds: list) -> None:
    """Serve one resident jail (a sandboxed actor)."""
    from .resident import serve as serve_resident
    _in_handler(close_fds, lambda: serve_resident(req, sock))


def _spare_handler(policy: dict, req_fd: int, report_fd: int, close_fds: list) -> None:
    """A pre-started jail waiting for one request (``warm``)."""
    from .warm import serve_spare
    _in_handler(close_fds, lambda: serve_spare(policy, req_fd, report_fd))


def _handler(req: dict, wfd: int, close_fds: list) -> None:
    """Run the snippet or call jailed and write the report."""
    from .runner import write_all
    _in_handler(close_fds, lambda: write_all(wfd, msgpack.packb(_serve(req),
                                                                use_bin_type=True)))


def _serve(req: dict) -> dict:
    from . import codec
    from .calls import plain_details, run_call, snippet_fields
    from .runner import run_snippet
    try:
        policy = policy_from_dict(req.get("policy") or {})
        if req.get("op") == "call":
            r = run_call(req["payload"], policy)
            r["details"] = plain_details(r["details"])
            return {"ok": True, "result": r}
        blob = req.get("inputs")
        inputs = codec.decode(blob) if blob else {}
        if not isinstance(inputs, dict):
            raise TypeError("inputs must be a dict")
        r = run_snippet(req["code"], policy, inputs)
        return {"ok": True, "result": snippet_fields(r)}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _reap_orphans(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            if time.monotonic() > deadline:
                return  # whatever is left goes to the zygote, itself a subreaper
            time.sleep(0.005)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(143)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with code {os.WEXITSTATUS(status)}"


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    fd = int(argv[0])
    # warm imports: every sandbox starts as a fork of this process
    from . import calls, codec, jail, policy, resident, runner, warm  # noqa: F401
    import cloudpickle  # noqa: F401  (unpickling a call's payload in the jail needs it)
    sock = socket.socket(fileno=fd)
    serve(sock)


if __name__ == "__main__":
    main()
