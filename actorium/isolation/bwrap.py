"""The bubblewrap backend: ``bwrap`` builds the namespaces and the filesystem view.

Selected by ``SandboxPolicy(backend="bwrap")`` (or ``ACTORIUM_SANDBOX_BACKEND=bwrap`` as
the default), and only when ``bwrap`` is on PATH. Process shape, from the forked child
``C1`` of ``runner.run_jailed``::

    C1 (keeper: joins the cgroup, reports C2's wait status)
     `--fork--> C2 --exec--> bwrap --> python (pid 1 of the sandbox: bwrap_stage)

The filesystem view is the built-in one, described to bwrap as arguments: a tmpfs root
with read-only binds of the runtime paths (``rootfs.bind_sources``) and of the
``actorium`` package directory (the sandbox is a fresh interpreter, not a fork, so it must
import our stage code), /dev with only null, zero, full, random and urandom, a fresh
/proc, a size-capped /tmp, ``policy.files`` read-only, hostname ``sandbox``, loopback-only
network unless ``policy.network``; all capabilities dropped, a clean environment.
Everything after that — fd closing, environment scrub, rlimits, NO_NEW_PRIVS, Landlock
and **our seccomp filter** — is done by ``bwrap_stage`` inside, exactly as the built-in
jail does it, so the escape suite holds for both.

When the caller is root of the host, C2 first binds the runtime paths into a private
stage (as root, so paths under 0700 directories such as /root stay reachable) and then
drops to the dedicated outside uid ``SANDBOX_UID_BASE + pid`` before exec'ing bwrap, so a
bwrap sandbox is no more privileged on the host than a built-in one.
"""
from __future__ import annotations

import os
import shutil
import signal
import site
import sys

import msgpack

from . import _sys, rootfs
from .jail import (ENV_ALLOWLIST, INSIDE_UID, SANDBOX_UID_BASE, STATUS_STRUCT, _close_fds_except,
                   _in_initial_userns)

__all__ = ["available", "exec_jail", "bind_sources"]

_STAGE = "/run/actorium-bwrap-stage"


def available() -> bool:
    return shutil.which("bwrap") is not None


def _package_dir() -> str:
    """The directory of the actorium package (this file is actorium/isolation/bwrap.py)."""
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def bind_sources(policy) -> list[str]:
    """Host paths a bwrap jail binds read-only: the built-in jail's, plus the actorium
    package directory (a fresh interpreter must import its stage code)."""
    return rootfs.bind_sources(policy) + [_package_dir()]


def _data_fd(data: bytes) -> int:
    """An inheritable fd reading ``data`` from its start (for ``--ro-bind-data``)."""
    fd = os.memfd_create("actorium-bwrap", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


def _arguments(policy, sources: list[str], prefix: str, job_fd: int) -> tuple[list, list]:
    """(bwrap argv, fds bwrap must inherit)."""
    fds = [job_fd]
    argv = [shutil.which("bwrap"), "--unshare-user", "--uid", str(INSIDE_UID),
            "--gid", str(INSIDE_UID), "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
            "--new-session", "--as-pid-1", "--cap-drop", "ALL", "--clearenv"]
    if not policy.network:
        argv.append("--unshare-net")
    # /tmp first: runtime paths that live under /tmp (a checkout or venv there) are bound
    # on top of the private tmpfs instead of being hidden by it
    argv += ["--perms", "1777", "--size", str(policy.tmp_size), "--tmpfs", "/tmp"]
    for path in sources:
        argv += ["--ro-bind", prefix + path, path]
    for top in rootfs._TOP_SYMLINKS:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
    argv += ["--dir", "/dev"]
    for dev in rootfs.DEVICES:
        if os.path.exists("/dev/" + dev):
            argv += ["--dev-bind", "/dev/" + dev, "/dev/" + dev]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        argv += ["--symlink", target, "/dev/" + name]
    argv += ["--proc", "/proc"]
    etc = {"/etc/passwd": rootfs._PASSWD.encode(), "/etc/group": rootfs._GROUP.encode(),
           "/etc/hosts": rootfs._HOSTS.encode(), "/etc/hostname": b"sandbox\n"}
    for path, data in {**etc, **policy.files}.items():
        fd = _data_fd(bytes(data))
        fds.append(fd)
        argv += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    argv += ["--remount-ro", "/", "--chdir", "/tmp"]
    for key, value in {**ENV_ALLOWLIST, **policy.env}.items():
        argv += ["--setenv", key, value]
    return argv, fds


def _stage_sources(sources: list[str]) -> str:
    """As root in a private mount namespace: bind each source under a stage directory
    reachable by the unprivileged uid we are about to become. Returns the prefix."""
    _sys.unshare(_sys.CLONE_NEWNS)
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    os.makedirs(_STAGE, mode=0o755, exist_ok=True)
    _sys.mount("tmpfs", _STAGE, "tmpfs", _sys.MS_NOSUID | _sys.MS_NODEV, "size=1m,mode=755")
    for path in sources:
        target = _STAGE + path
        if os.path.isdir(path):
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _sys.mount(path, target, None, _sys.MS_BIND | _sys.MS_REC)
    return _STAGE


_keeper = {"child": 0}
_PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def _kill_sandbox() -> None:
    """SIGKILL bwrap's child (pid 1 of the sandbox: its pid namespace ends with it), then
    bwrap. The keeper is a subreaper, so whichever dies first is reaped here."""
    pid = _keeper["child"]
    if not pid:
        return
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            inner = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        inner = []
    for p in [*inner, pid, *_children()]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _on_sigterm(signum, frame) -> None:
    _kill_sandbox()


def exec_jail(job: dict, policy, cgroup, fds: dict, extra_keep) -> None:
    """In ``run_jailed``'s forked child: become the keeper of a bwrap sandbox running
    ``job``. Never returns. ``fds`` are the runner's pipes (see ``runner._child``)."""
    os.setsid()
    signal.signal(signal.SIGTERM, _on_sigterm)
    # orphans of a killed bwrap (the sandbox's pid 1) come to us to be killed and reaped
    _sys.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    if cgroup is not None:
        cgroup.join(0)
    keep = [fds["res_w"], fds["setup_w"], *extra_keep]
    job = dict(job, policy=_plain_policy(policy), have_cgroup=cgroup is not None,
               keep_fds=keep, setup_fd=fds["setup_w"], res_fd=fds["res_w"])
    job_fd = _data_fd(msgpack.packb(job, use_bin_type=True))
    pid = os.fork()
    if pid == 0:
        try:
            sources = bind_sources(policy)
            prefix = ""
            if os.geteuid() == 0 and _in_initial_userns():
                prefix = _stage_sources(sources)
                uid = SANDBOX_UID_BASE + os.getpid()
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            _sys.prctl(_sys.PR_SET_PDEATHSIG, signal.SIGKILL)  # after setresuid, which clears it
            if os.getppid() == 1:
                os._exit(125)
            argv, inherit = _arguments(policy, sources, prefix, job_fd)
            for fd in inherit + keep:
                os.set_inheritable(fd, True)
            # ``actorium`` and ``actorium.isolation`` as bare namespaces: neither package's
            # __init__ runs (isolation's registers with the core, which would import the
            # runtime inside the jail, before its site-packages are even on the path).
            pkg = _package_dir()
            boot = ("import sys,types\n"
                    "for n,d in (('actorium',%r),('actorium.isolation',%r)):\n"
                    " m=types.ModuleType(n);m.__path__=[d];sys.modules[n]=m\n"
                    "import actorium.isolation.bwrap_stage as s;s.main()"
                    % (pkg, os.path.join(pkg, "isolation")))
            argv += ["--", os.path.realpath(sys.executable), "-I", "-S", "-c", boot, str(job_fd),
                     *site.getsitepackages()]
            os.execv(argv[0], argv)
        except BaseException as exc:
            try:
                os.write(fds["setup_w"], f"ERbwrap: {exc}".encode()[:4000])
            except OSError:
                pass
        os._exit(125)
    _keeper["child"] = pid
    # the keeper holds nothing but its status pipe (the collector waits for EOF on the rest)
    _close_fds_except([fds["status_w"]], keep_stdio=False)
    code = 125
    try:
        while True:
            try:
                _, status, ru = os.wait4(pid, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        # bwrap reports a child killed by signal N as exit code 128 + N
        wstatus = (code - 128) if 128 < code < 160 else ((code & 0xFF) << 8 if code >= 0 else -code)
        os.write(fds["status_w"], b"S" + STATUS_STRUCT.pack(
            wstatus, int(ru.ru_utime * 1e6), int(ru.ru_stime * 1e6), ru.ru_maxrss))
        _reap_rest()
    finally:
        os._exit(code & 0xFF if code >= 0 else 1)


def _reap_rest(timeout: float = 2.0) -> None:
    """After bwrap exited: nothing of the sandbox may outlive the keeper."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in _children():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.005)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def _plain_policy(policy) -> dict:
    from .channel import policy_to_dict
    return policy_to_dict(policy)
