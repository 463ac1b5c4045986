"""Landlock (defense in depth on top of the mount namespace), via raw syscalls.

Invariants: applied after pivot_root and NO_NEW_PRIVS, before seccomp (which then stops
no landlock call: they can only add restrictions).  On kernels without Landlock, or with
it disabled, ``apply`` returns 0 and changes nothing; callers report the ABI they got.

Rules: everything readable/executable (the jail root only holds what we bound into it),
writable only under the writable paths (/tmp) and the device nodes; with ABI >= 6 the
domain is also scoped: no signals to and no abstract-unix connects to processes outside it
(this matters most with ``network=True``, where the host's abstract sockets are reachable).
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["abi_version", "apply"]

_NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1

# fs access rights by ABI
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _nrs():
    import platform
    return _NR.get("aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64")


def abi_version() -> int:
    """Landlock ABI version offered by the kernel, 0 if unavailable."""
    r = _libc.syscall(_nrs()[0], None, ctypes.c_size_t(0),
                      ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(r), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def apply(writable=("/tmp",), devices=("/dev",), readable=("/",)) -> int:
    """Restrict the calling process (NO_NEW_PRIVS must be set).  Returns the ABI used."""
    abi = abi_version()
    if abi <= 0:
        return 0
    create, add_rule, restrict = _nrs()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=handled, handled_access_net=0,
                        scoped=(_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16
    rfd = _libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rfd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"landlock_create_ruleset: {os.strerror(e)}")
    try:
        read_rights = _EXECUTE | _READ_FILE | _READ_DIR
        write_rights = handled & ~(_MAKE_CHAR | _MAKE_BLOCK | _IOCTL_DEV)
        dev_rights = _READ_FILE | _WRITE_FILE | _READ_DIR | (_TRUNCATE if abi >= 3 else 0)
        for paths, rights in ((readable, read_rights), (writable, write_rights),
                              (devices, dev_rights)):
            for p in paths:
                _add_path_rule(add_rule, rfd, p, rights & handled)
        if _libc.syscall(restrict, ctypes.c_int(rfd), ctypes.c_uint32(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"landlock_restrict_self: {os.strerror(e)}")
    finally:
        os.close(rfd)
    return abi


def _add_path_rule(add_rule: int, rfd: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            # rights that only make sense on directories are refused on files
            rights &= _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
        pb = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        if _libc.syscall(add_rule, ctypes.c_int(rfd), ctypes.c_int(_RULE_PATH_BENEATH),
                         ctypes.byref(pb), ctypes.c_uint32(0)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"landlock_add_rule({path}): {os.strerror(e)}")
    finally:
        os.close(fd)
