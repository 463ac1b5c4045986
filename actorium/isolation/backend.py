"""Jail backends: who builds the namespaces and the filesystem view.

Invariant: every backend ends with the same in-process hardening (our seccomp filter,
NO_NEW_PRIVS, rlimits, fd and environment scrubbing), so the escape suite holds for all.
Only the built-in backend exists today; ``bwrap`` is accepted only when the binary is on
PATH and is not implemented yet (it raises, rather than silently using something weaker).
"""
from __future__ import annotations

import os
import shutil
from typing import Callable, Sequence

from .jail import JailError, enter_jail

__all__ = ["JailBackend", "BuiltinBackend", "get_backend"]


class JailBackend:
    """Interface: start ``target()`` jailed per ``policy``; return the keeper's pid.

    ``target`` runs in the jailed process with only ``keep_fds`` (plus 0, 1, 2) open and
    must not return (it should ``os._exit``).  The returned pid is the caller's direct
    child: wait for it with ``os.waitpid``; SIGTERM to it ends the sandbox cleanly.
    Must be called from a single-threaded process.
    """

    name = "abstract"

    def spawn(self, policy, target: Callable[[], None], keep_fds: Sequence[int] = (), *,
              cgroup=None, status_fd: int | None = None) -> int:
        raise NotImplementedError


class BuiltinBackend(JailBackend):
    """Namespaces, rootfs, cgroups, Landlock and seccomp of ``jail.enter_jail``."""

    name = "builtin"

    def spawn(self, policy, target, keep_fds=(), *, cgroup=None, status_fd=None) -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 125
        try:
            enter_jail(policy, keep_fds=keep_fds, cgroup=cgroup, status_fd=status_fd)
            target()
            code = 0
        except BaseException:  # never unwind into the caller's stack in a child
            code = 125
        finally:
            os._exit(code)


def get_backend(name: str = "builtin") -> JailBackend:
    if name == "builtin":
        return BuiltinBackend()
    if name == "bwrap":
        if shutil.which("bwrap") is None:
            raise JailError("backend 'bwrap' requested but bwrap is not on PATH")
        raise JailError("backend 'bwrap' is not implemented yet (see docs/security.md)")
    raise ValueError(f"unknown jail backend {name!r}")
