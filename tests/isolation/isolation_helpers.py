"""Shared helpers for the sandbox suite."""
from actorium.isolation.policy import SandboxPolicy
from actorium.isolation.runner import run_snippet

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
