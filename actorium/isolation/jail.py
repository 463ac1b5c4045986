"""enter_jail: turn a freshly forked, single-threaded child into a sandbox.

Process shape (``P`` is the trusted caller, e.g. the zygote)::

    P --fork--> C1 (keeper: host pid ns, unprivileged uid U, owns the new namespaces)
                 `--fork--> C2 (pid 1 of the new pid ns; enter_jail returns here)

Only C2 returns from ``enter_jail``.  C1 waits for C2, writes ``b"S"`` + C2's wait status and
rusage (``STATUS_STRUCT``) to ``status_fd`` (if given) and exits with C2's code (128+signal if
it was killed).  To end a sandbox, send SIGTERM to C1: it SIGKILLs C2 (ending the whole pid
namespace) and still reaps and reports it.  If C1 dies, C2 gets SIGKILL (PR_SET_PDEATHSIG).

Invariants when ``enter_jail`` returns (in this order of establishment):
 1. new session; in the sandbox cgroup (if one was given; joined while still root)
 2. when started as root: supplementary groups dropped and real/effective/saved uid and
    gid set to U = SANDBOX_UID_BASE + pid(C1) outside, so the sandbox owns no host file
    and cannot signal or ptrace any other process on the host, even if a namespace failed
 3. new user, mount, pid, ipc, uts, cgroup (and, unless policy.network, net) namespaces;
    inside, uid/gid 1000 (mapped to U), setgroups denied
 4. the filesystem of ``rootfs.build_root`` (tmpfs root, read-only runtime, fresh /proc,
    private /tmp), hostname "sandbox", loopback up in the private network namespace
 5. every fd closed except 0, 1, 2 and ``keep_fds``; environment reduced to the allowlist
    and the initial environment block (what /proc/self/environ shows) zeroed
 6. rlimits set (AS, CPU, FSIZE, NOFILE, NPROC, CORE=0); no capabilities in any set
 7. NO_NEW_PRIVS, Landlock (where the kernel offers it), and the seccomp filter last.
A failure at any step raises ``JailError`` in the process where it happened; the caller
must then ``os._exit`` (never let a half-jailed child run user code or return to its
caller's stack).
"""
from __future__ import annotations

import errno
import fcntl
import os
import resource
import select
import signal
import socket
import struct

from . import _sys, landlock, rootfs, seccomp

__all__ = ["enter_jail", "JailError", "JailInfo", "SANDBOX_UID_BASE", "INSIDE_UID",
           "STATUS_STRUCT", "ENV_ALLOWLIST"]

SANDBOX_UID_BASE = int(os.environ.get("ACTORIUM_SANDBOX_UID_BASE", "1500000000"))
INSIDE_UID = 1000
STATUS_STRUCT = struct.Struct("<iqqq")  # wait status, utime_us, stime_us, maxrss_kib
ENV_ALLOWLIST = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                 "HOME": "/tmp", "TMPDIR": "/tmp"}
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class JailError(RuntimeError):
    """Jail setup failed; the process must not run user code."""


class JailInfo:
    """What the jail could establish (reported in results, never assumed)."""

    def __init__(self):
        self.outside_uid = os.geteuid()
        self.landlock_abi = 0
        self.cgroup = False


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _in_initial_userns() -> bool:
    """True when our uids are the host's (so a dedicated outside uid can be set)."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def _write_proc(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _close_fds_except(keep, keep_stdio: bool = True) -> None:
    keep = sorted({*((0, 1, 2) if keep_stdio else ()), *keep})
    lo = 0
    for fd in keep:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)


def _scrub_environment(extra: dict) -> None:
    """Allowlisted env only, and zero the exec-time env block of /proc/self/environ."""
    os.environ.clear()  # unsetenv()s every variable, so libc's environ no longer points
    os.environ.update(ENV_ALLOWLIST)  # into the exec-time block we zero below
    os.environ.update(extra)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # proc(5): env_start/env_end are fields 50/51; fields[0] here is field 3
        start, end = int(fields[47]), int(fields[48])
        if 0 < start < end:
            _sys.memzero(start, end - start)
    except (OSError, ValueError, IndexError):
        pass


def _set_rlimits(policy, have_cgroup: bool) -> None:
    cpu = int(policy.cpu_seconds + 0.999)
    with open("/proc/self/statm") as f:
        vm_now = int(f.read().split()[0]) * resource.getpagesize()
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, policy.max_open_files),
        (resource.RLIMIT_FSIZE, policy.max_file_size),
        # the pids cgroup is the real limit (and tells us it was hit); RLIMIT_NPROC is
        # the fallback when no cgroup is writable, so it must not trip first
        (resource.RLIMIT_NPROC, policy.max_processes * (2 if have_cgroup else 1)),
        # address space: what the forked interpreter already maps plus the budget, so an
        # oversized allocation fails with MemoryError before the cgroup OOM-kills us
        (resource.RLIMIT_AS, vm_now + policy.memory),
    ]
    for res, value in limits:
        resource.setrlimit(res, (value, value))
    # pid 1 of a namespace ignores SIGXCPU, so the hard limit (SIGKILL) is what ends it
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


_keeper_state = {"child": None, "stop": False}


def _on_sigterm(signum, frame) -> None:
    # SIGTERM to the keeper means "end the sandbox": the keeper kills pid 1 of the
    # namespace (its own child, so no pid-reuse race) and then reaps it normally.
    _keeper_state["stop"] = True
    if _keeper_state["child"]:
        try:
            os.kill(_keeper_state["child"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def _keeper(child: int, status_fd: int | None, live_w: int) -> None:
    """C1: wait for C2, report, exit.  Never returns."""
    code = 125
    _keeper_state["child"] = child
    if _keeper_state["stop"]:
        _on_sigterm(signal.SIGTERM, None)
    try:
        while True:
            try:
                _, status, ru = os.wait4(child, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                status, ru = 0, None
                break
        if status_fd is not None and ru is not None:
            os.write(status_fd, b"S" + STATUS_STRUCT.pack(
                status, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6), ru.ru_maxrss))
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    finally:
        os._exit(code & 0xFF)


def enter_jail(policy, keep_fds=(), *, cgroup=None, status_fd: int | None = None,
               info: JailInfo | None = None) -> JailInfo:
    """Jail the calling process (a fresh fork of a single-threaded process).

    Returns only in the jailed grandchild (pid 1 of the sandbox's pid namespace), with the
    invariants of the module docstring established.  ``keep_fds`` stay open in it;
    ``status_fd`` is kept only by the keeper (C1).  ``cgroup`` is a
    ``cgroups.SandboxCgroup`` created by the caller, or None.
    """
    info = info or JailInfo()
    signal.signal(signal.SIGTERM, _on_sigterm)
    if _threads() != 1:
        raise JailError("enter_jail needs a single-threaded process (unshare(CLONE_NEWUSER) "
                        f"fails otherwise); this one has {_threads()} threads")
    parent = os.getppid()
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    try:
        sources = rootfs.bind_sources(policy)
        if cgroup is not None:
            cgroup.join(0)
            info.cgroup = True
        # root of the host: stage as real root, then drop to the dedicated outside uid.
        # Otherwise (a normal user, or root of some user namespace) only our own uid
        # can be mapped, so that is the outside uid and staging happens in the new userns.
        privileged = os.geteuid() == 0 and _in_initial_userns()
        if privileged:
            # stage the root as real root in a private mount ns (see rootfs docstring)
            _sys.unshare(_sys.CLONE_NEWNS)
            rootfs.stage_root(policy, sources)
            uid = SANDBOX_UID_BASE + os.getpid()
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # all ids non-zero: every capability is dropped
            # the uid change made us non-dumpable, which would make /proc/self/* root-owned
            # and unwritable (uid_map); nothing else depends on this flag in the jail
            _sys.prctl(_sys.PR_SET_DUMPABLE, 1)
        info.outside_uid, gid = os.geteuid(), os.getegid()
        flags = (_sys.CLONE_NEWUSER | _sys.CLONE_NEWNS | _sys.CLONE_NEWPID
                 | _sys.CLONE_NEWIPC | _sys.CLONE_NEWUTS | _sys.CLONE_NEWCGROUP)
        if not policy.network:
            flags |= _sys.CLONE_NEWNET
        _sys.unshare(flags)
        _write_proc("/proc/self/uid_map", f"{INSIDE_UID} {info.outside_uid} 1\n")
        _write_proc("/proc/self/setgroups", "deny")
        _write_proc("/proc/self/gid_map", f"{INSIDE_UID} {gid} 1\n")
        if not privileged:
            rootfs.stage_root(policy, sources)
        live_r, live_w = os.pipe()
        pid = os.fork()
    except OSError as e:
        raise JailError(f"jail setup (keeper) failed: {e}") from e
    if pid:
        os.close(live_r)
        # the keeper holds nothing but its two pipes: not even the sandbox's stdio
        _close_fds_except([live_w] + ([status_fd] if status_fd is not None else []),
                          keep_stdio=False)
        try:
            # set after the uid change (which clears it); then re-check for the race
            _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)
        _keeper(pid, status_fd, live_w)
    try:
        _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # own session: kill(0)/killpg from inside cannot reach the keeper's group
        os.setsid()
        os.close(live_w)
        if select.select([live_r], [], [], 0)[0]:  # keeper died before PDEATHSIG was set
            os._exit(125)
        os.close(live_r)
        if status_fd is not None:
            os.close(status_fd)
        rootfs.finish_root(policy)
        socket.sethostname("sandbox")
        if not policy.network:
            _loopback_up()
        _close_fds_except(keep_fds)
        _scrub_environment(dict(policy.env))
        _set_rlimits(policy, info.cgroup)
        _sys.drop_all_capabilities()
        _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
        try:
            info.landlock_abi = landlock.apply(writable=("/tmp",), devices=("/dev",))
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EOPNOTSUPP):
                raise
        seccomp.install_filter()
    except OSError as e:
        raise JailError(f"jail setup failed: {e}") from e
    return info
