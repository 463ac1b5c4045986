"""run_snippet: execute one Python snippet in a fresh jail and collect its result.

Invariants
----------
* Callable only from a single-threaded process (checked): it forks, and the jail's
  unshare(CLONE_NEWUSER) and fork-safety both need that.  In production the caller is the
  per-node zygote, which holds no secrets: the sandbox starts as a copy of the caller's
  memory (see docs/security.md), only the environment and open fds are scrubbed.
* The parent never unpickles or evaluates anything from the sandbox: stdout/stderr are
  byte streams (capped), the value is decoded by ``codec.decode`` (size/depth limited).
* It never hangs: wall time is enforced from the parent with SIGKILL of the keeper and
  of everything in the sandbox cgroup, and all pipes are drained with a deadline.
* Nothing is left behind: the keeper is reaped, the cgroup emptied and removed, the
  namespaces die with their last process.
* A snippet's own failure (exception, limit hit, seccomp denial) is data in the result;
  only a failure of the jail machinery itself raises ``SandboxError``.
"""
from __future__ import annotations

import ast
import os
import select
import signal
import threading
import time
from dataclasses import dataclass, field

from . import codec
from .cgroups import SandboxCgroup
from .jail import STATUS_STRUCT, enter_jail
from .policy import SandboxPolicy

__all__ = ["run_snippet", "SandboxResult", "SandboxError"]

_SETUP_OK = b"OK"
_DRAIN_SECONDS = 2.0     # after the keeper exits, pipes must reach EOF within this
_ESCALATE_SECONDS = 1.0  # after SIGTERM to the keeper, SIGKILL if it has not exited
_CHUNK = 65536


class SandboxError(RuntimeError):
    """The sandbox machinery itself failed (not the snippet)."""


@dataclass
class SandboxResult:
    stdout: str
    stderr: str
    exit_code: int          # exit status; -N when the snippet was killed by signal N
    value: object = None    # value of the last expression (data-only codec) or None
    violation: str | None = None  # limit/rule that ended it: memory, cpu_time, ...
    duration: float = 0.0   # seconds, fork to reap
    details: dict = field(default_factory=dict)


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _single_threaded(grace: float = 0.5) -> bool:
    """True when this process has one thread. A thread Python does not know about (one
    a C library started and is ending) gets ``grace`` seconds to go first."""
    if threading.active_count() != 1:
        return False
    deadline = time.monotonic() + grace
    while _os_threads() != 1:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------- inside the jail

def wire_stdio(argv0: str = "<sandbox>") -> None:
    """Inside the jail: Python-level stdio on fds 0/1/2 (the parent's pipes)."""
    import io
    import sys
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.__stdout__, sys.__stderr__, sys.__stdin__ = sys.stdout, sys.stderr, sys.stdin
    sys.argv = [argv0]


def flush_stdio() -> None:
    import sys
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass


def _run_user_code(code: str, inputs: dict, res_fd: int) -> int:
    """Runs as pid 1 of the sandbox, jailed.  Returns the exit code."""
    import builtins
    import linecache
    import sys
    import traceback

    wire_stdio()
    linecache.cache["<sandbox>"] = (len(code), None, code.splitlines(True), "<sandbox>")
    g = {"__name__": "__main__", "__builtins__": builtins, "inputs": inputs}
    g.update({k: v for k, v in inputs.items() if isinstance(k, str) and k.isidentifier()})
    message: dict = {"value": None}
    rc = 0
    try:
        tree = ast.parse(code, "<sandbox>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<sandbox>", "exec"), g)
        if last is not None:
            message["value"] = eval(compile(last, "<sandbox>", "eval"), g)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException as e:  # the snippet's failure is data, reported via stderr
        traceback.print_exc()
        message["error_type"] = type(e).__name__
        rc = 1
    try:
        payload = codec.encode(message)
    except codec.CodecError as e:
        print(f"sandbox: result value cannot be returned: {e}", file=sys.stderr)
        payload = codec.encode({"value": None, "error_type": "CodecError"})
        rc = rc or 1
    flush_stdio()
    write_all(res_fd, payload)
    return rc


def _child(body, policy, cgroup, fds, extra_keep=()) -> None:
    """First forked child: wire stdio, jail, run ``body(res_fd) -> exit code``.

    Never returns.  ``body`` runs jailed; it must decode whatever it needs itself."""
    rc = 125
    setup_w = fds["setup_w"]
    try:
        os.dup2(fds["devnull"], 0)
        os.dup2(fds["out_w"], 1)
        os.dup2(fds["err_w"], 2)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if policy.backend == "bwrap":
            from .bwrap import exec_jail
            exec_jail(body.job, policy, cgroup, fds, extra_keep)  # never returns
        enter_jail(policy, keep_fds=[fds["res_w"], setup_w, *extra_keep], cgroup=cgroup,
                   status_fd=fds["status_w"])
        os.write(setup_w, _SETUP_OK)
        os.close(setup_w)  # user code must not be able to forge a setup failure
        setup_w = None
        rc = body(fds["res_w"])
    except BaseException as e:
        if setup_w is not None:
            try:
                os.write(setup_w, f"ER{type(e).__name__}: {e}".encode()[:4000])
            except OSError:
                pass
    finally:
        os._exit(rc & 0xFF if rc >= 0 else 1)


# ---------------------------------------------------------------- the trusted side

class _Collector:
    """Reads the sandbox's pipes with caps; remembers why it killed, if it did."""

    def __init__(self, pid: int, policy: SandboxPolicy, cgroup):
        self.pid, self.policy, self.cgroup = pid, policy, cgroup
        self.bufs: dict[str, bytearray] = {}
        self.out_total = 0
        self.kill_reason: str | None = None
        self.terminate_at: float | None = None

    def kill(self, reason: str) -> None:
        if self.kill_reason is None:
            self.kill_reason = reason
        self.terminate()

    def terminate(self) -> None:
        """Ask the keeper to end the sandbox; escalate later if it does not (``force``)."""
        if self.terminate_at is None:
            self.terminate_at = time.monotonic()
            try:
                os.kill(self.pid, signal.SIGTERM)  # keeper kills the ns init, reaps it
            except ProcessLookupError:
                pass

    def force(self) -> None:
        """Last resort: SIGKILL the keeper (its death SIGKILLs the ns init) and the cgroup."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.cgroup is not None:
            self.cgroup.kill_all(0.5)

    def feed(self, name: str, data: bytes) -> None:
        buf = self.bufs.setdefault(name, bytearray())
        cap = self.policy.max_output_bytes
        if name in ("stdout", "stderr"):
            room = cap - self.out_total
            self.out_total += len(data)
            buf += data[:max(room, 0)]
            if self.out_total > cap:
                self.kill("output")
        elif name == "result":
            buf += data
            if len(buf) > cap + 1024:
                del buf[cap:]
                self.kill("output")
        else:  # setup / status: tiny control messages
            buf += data[:8192 - len(buf)]


def run_snippet(code: str, policy: SandboxPolicy | None = None,
                inputs: dict | None = None) -> SandboxResult:
    """Run ``code`` in a fresh jail; return stdout, stderr, exit code, value, violation."""
    if not isinstance(code, str):
        raise TypeError("code must be a str")
    policy = policy or SandboxPolicy()
    inputs_blob = codec.encode(dict(inputs or {}))  # data only in, like data only out

    def body(res_fd: int) -> int:
        return _run_user_code(code, codec.decode(inputs_blob), res_fd)
    body.job = {"kind": "snippet", "code": code, "inputs": inputs_blob}
    col, stats, duration = run_jailed(body, policy)
    return _result(col, stats, policy, duration)


def run_jailed(body, policy: SandboxPolicy, extra_fds: dict | None = None,
               collect=None, cgroup_name: str | None = None):
    """Fork a child that jails itself and runs ``body(res_fd)``; collect its pipes.

    ``body.job`` describes the same work as data (``bwrap_stage._run``), for backends
    that start a fresh interpreter instead of running ``body`` in the fork.
    ``extra_fds`` (name -> (parent end, jail end)): more pipe ends; the jail ends stay
    open in the jail (``body`` finds them by closure) and are closed here after the fork.
    ``collect(col, names, deadline)`` replaces the default collector loop (resident
    jails serve many calls).  Returns (collector, cgroup stats, seconds)."""
    if not _single_threaded():
        raise RuntimeError("sandboxes must be started from a single-threaded process "
                           f"({threading.active_count()} Python threads, "
                           f"{len(os.listdir('/proc/self/task'))} OS threads)")
    extra_fds = extra_fds or {}
    cgroup = SandboxCgroup.create(policy, cgroup_name)
    pipes = {name: os.pipe() for name in ("out", "err", "res", "setup", "status")}
    fds = {f"{n}_w": w for n, (r, w) in pipes.items()}
    fds["devnull"] = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    start = time.monotonic()
    try:
        pid = os.fork()
    except BaseException:
        for r, w in pipes.values():
            os.close(r), os.close(w)
        os.close(fds["devnull"])
        if cgroup is not None:
            cgroup.remove()
        raise
    if pid == 0:
        for mine, _theirs in extra_fds.values():
            os.close(mine)
        _child(body, policy, cgroup, fds, [j for _p, j in extra_fds.values()])
    for r, w in pipes.values():
        os.close(w)
    for _mine, theirs in extra_fds.values():
        os.close(theirs)
    os.close(fds["devnull"])
    names = {pipes["out"][0]: "stdout", pipes["err"][0]: "stderr",
             pipes["res"][0]: "result", pipes["setup"][0]: "setup",
             pipes["status"][0]: "status"}
    col = _Collector(pid, policy, cgroup)
    try:
        (collect or _collect)(col, names, start + policy.wall_seconds)
    finally:
        _reap(pid, col)
        stats = cgroup.stats() if cgroup is not None else {}
        if cgroup is not None and not cgroup.remove():
            raise SandboxError(f"could not remove sandbox cgroup {cgroup.dirs}")
        for fd in names:
            try:
                os.close(fd)
            except OSError:
                pass
    return col, stats, time.monotonic() - start


def _collect(col: _Collector, names: dict[int, str], deadline: float) -> None:
    poller = select.poll()
    for fd in names:
        poller.register(fd, select.POLLIN)
    open_fds = set(names)
    pidfd = os.pidfd_open(col.pid)
    poller.register(pidfd, select.POLLIN)
    keeper_done = False
    exited_at = None
    try:
        while open_fds or not keeper_done:
            now = time.monotonic()
            if now >= deadline and col.kill_reason is None and not keeper_done:
                col.kill("wall_time")
            if col.terminate_at is not None and not keeper_done \
                    and now >= col.terminate_at + _ESCALATE_SECONDS:
                col.force()
                col.terminate_at = float("inf")
            if exited_at is not None and now >= exited_at + _DRAIN_SECONDS:
                col.force()  # something still holds a pipe after the sandbox ended
                break
            wake = [deadline] if col.kill_reason is None else []
            if col.terminate_at is not None and not keeper_done:
                wake.append(col.terminate_at + _ESCALATE_SECONDS)
            if exited_at is not None:
                wake.append(exited_at + _DRAIN_SECONDS)
            limit = min(wake) if wake else now + 1.0
            timeout_ms = max(0, int((limit - now) * 1000)) + 1
            for fd, _ in poller.poll(timeout_ms):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    keeper_done = True
                    exited_at = time.monotonic()
                    continue
                data = os.read(fd, _CHUNK)
                if data:
                    col.feed(names[fd], data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
    finally:
        os.close(pidfd)


def _reap(pid: int, col: _Collector) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)[0] or (os.kill(pid, signal.SIGKILL), os.waitpid(pid, 0))
    except ChildProcessError:
        pass


def exit_status(col: _Collector, stats: dict) -> tuple[int, int | None, dict]:
    """(exit code, killing signal or None, details) from the keeper's status report."""
    setup = bytes(col.bufs.get("setup", b""))
    if not setup.startswith(_SETUP_OK) and col.kill_reason != "wall_time":
        raise SandboxError("sandbox jail setup failed: "
                           + (setup[2:].decode(errors="replace") or "no report from jail"))
    status = bytes(col.bufs.get("status", b""))
    details = {"cgroup": bool(stats), **stats}
    signum = None
    if len(status) == STATUS_STRUCT.size + 1 and status[:1] == b"S":
        wstatus, utime, stime, maxrss = STATUS_STRUCT.unpack(status[1:])
        exit_code = os.waitstatus_to_exitcode(wstatus)
        signum = -exit_code if exit_code < 0 else None
        details.update(cpu_seconds=(utime + stime) / 1e6, maxrss_kib=maxrss)
    else:  # the keeper was killed (by us): the snippet died by SIGKILL
        exit_code = -signal.SIGKILL
    return exit_code, signum, details


def classify(col: _Collector, stats: dict, policy: SandboxPolicy, exit_code: int,
             signum: int | None, details: dict, error_type: str | None) -> str | None:
    """The limit or rule that ended the sandbox, or None when it ended on its own."""
    failed = exit_code != 0 or col.kill_reason is not None
    if col.kill_reason == "output":
        return "output"
    if stats.get("oom_kill", 0) > 0 or error_type == "MemoryError":
        return "memory"
    if failed and stats.get("pids_max", 0) > 0:
        return "processes"
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and col.kill_reason is None
                                    and details.get("cpu_seconds", 0) >= policy.cpu_seconds - 0.05):
        return "cpu_time"
    if col.kill_reason == "wall_time":
        return "wall_time"
    if signum == signal.SIGSYS:
        return "seccomp"
    return None


def _result(col: _Collector, stats: dict, policy: SandboxPolicy, duration: float):
    exit_code, signum, details = exit_status(col, stats)
    message: dict = {}
    raw = bytes(col.bufs.get("result", b""))
    if raw and col.kill_reason != "output":
        try:
            decoded = codec.decode(raw, max_bytes=policy.max_output_bytes + 1024)
            if isinstance(decoded, dict):
                message = decoded
        except codec.DecodeError as e:
            details["result_error"] = str(e)
    violation = classify(col, stats, policy, exit_code, signum, details,
                         message.get("error_type"))
    return SandboxResult(
        stdout=bytes(col.bufs.get("stdout", b"")).decode("utf-8", "replace"),
        stderr=bytes(col.bufs.get("stderr", b"")).decode("utf-8", "replace"),
        exit_code=exit_code, value=message.get("value"),
        violation=violation, duration=duration, details=details)
