"""Shared helpers for the sandbox suite."""
import os

import psutil

from actorium.isolation.cgroups import CGROUP_ROOT, _own_cgroup
from actorium.isolation.jail import SANDBOX_UID_BASE
from actorium.isolation.policy import SandboxPolicy
from actorium.isolation.runner import run_snippet
from actorium.isolation.warm import SPARE_PREFIX

FAST = dict(wall_seconds=10, cpu_seconds=5)

# Prelude for snippets that make raw syscalls: returns (ret, errno).
SYSCALL_PRELUDE = """
import ctypes, os, errno
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
def sc(nr, *args):
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return (r, ctypes.get_errno())
"""


def run(code, inputs=None, **policy):
    return run_snippet(code, SandboxPolicy(**{**FAST, **policy}), inputs)


def ok(code, inputs=None, **policy):
    """Run and require a clean exit; return the result."""
    r = run(code, inputs, **policy)
    assert r.exit_code == 0 and r.violation is None, (r.exit_code, r.violation, r.stderr)
    return r


def _in_spare_cgroup(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f"/actorium/{SPARE_PREFIX}" in f.read()
    except OSError:
        return False


def sandbox_processes(include_spares: bool = False):
    """Processes running under a sandbox uid (anywhere on this pid namespace), except
    the idle pre-started jails a live node keeps (``actorium.isolation.warm``)."""
    out = []
    for p in psutil.process_iter(["pid", "uids", "name"]):
        uids = p.info["uids"]
        if uids is not None and uids.real >= SANDBOX_UID_BASE:
            if include_spares or not _in_spare_cgroup(p.info["pid"]):
                out.append(p.info)
    return out


def sandbox_cgroups(include_spares: bool = False):
    """Sandbox cgroups still present under our own cgroups (idle spares excepted)."""
    left = []
    for ctrl in ("memory", "pids", "cpu"):
        rel = _own_cgroup(ctrl)
        if rel is None:
            continue
        d = os.path.join(CGROUP_ROOT, ctrl + rel.rstrip("/"), "actorium")
        if os.path.isdir(d):
            left += [os.path.join(d, x) for x in os.listdir(d)
                     if os.path.isdir(os.path.join(d, x))
                     and (include_spares or not x.startswith(SPARE_PREFIX))]
    return left


def wait_sandboxes_gone(timeout: float = 10.0) -> None:
    """Teardown of a jail is asynchronous (e.g. after ``actorium.kill``): wait for it."""
    import time
    deadline = time.monotonic() + timeout
    while (sandbox_processes() or sandbox_cgroups()) and time.monotonic() < deadline:
        time.sleep(0.02)
