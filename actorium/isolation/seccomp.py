"""Classic-BPF seccomp filter for sandboxes, built with ctypes (no libseccomp).

Invariants
----------
* A syscall from a foreign architecture (e.g. i386 via ``int 0x80`` on x86_64) kills the
  process: syscall numbers only mean something for the architecture they were checked for.
* On x86_64, x32 syscalls (nr >= 0x40000000) get EPERM: they alias the x86_64 table and
  would otherwise bypass the number checks.
* Denied syscalls return EPERM (clone3 returns ENOSYS so glibc falls back to ``clone``,
  whose flags we *can* inspect: seccomp cannot read clone3's struct argument).  EPERM
  rather than a kill keeps the failure an ordinary Python ``OSError`` inside the snippet.
* ``install_filter`` sets ``PR_SET_NO_NEW_PRIVS`` first and is irreversible.  It must be
  the last step of jailing; the jail is single-threaded, so TSYNC is not needed.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

__all__ = ["install_filter", "build_program", "syscall_numbers", "DENIED_SYSCALLS",
           "NAMESPACE_CLONE_FLAGS", "current_arch"]

# BPF opcodes (linux/bpf_common.h)
_LD_W_ABS = 0x20            # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15               # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35               # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45              # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06               # BPF_RET | BPF_K

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# struct seccomp_data offsets (little endian; args low word first)
_OFF_NR, _OFF_ARCH = 0, 4


def _off_arg_lo(i: int) -> int:
    return 16 + 8 * i


CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x08000000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWTIME = 0x40000000, 0x00000080
# CLONE_NEWTIME shares its bit with CSIGNAL for clone(2) and is only honoured by
# clone3/unshare, both denied outright, so it is not part of the clone(2) mask.
NAMESPACE_CLONE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
                         | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

TIOCSTI, TIOCLINUX = 0x5412, 0x541C
PERSONALITY_QUERY = 0xFFFFFFFF

# Syscall numbers; x86_64 verified against asm/unistd_64.h by tests/isolation.
# aarch64 uses the asm-generic table (no iopl/ioperm there); it is not exercised in CI.
_X86_64 = {
    "ioctl": 16, "clone": 56, "ptrace": 101, "syslog": 103, "personality": 135,
    "uselib": 134, "vhangup": 153, "pivot_root": 155, "_sysctl": 156, "adjtimex": 159,
    "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "create_module": 174, "init_module": 175, "delete_module": 176,
    "get_kernel_syms": 177, "query_module": 178, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272,
    "move_pages": 279, "perf_event_open": 298, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "finit_module": 313, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "clone3": 435, "pidfd_getfd": 438,
    "process_madvise": 440, "mount_setattr": 442, "quotactl_fd": 443,
}
_AARCH64 = {
    "ioctl": 29, "clone": 220, "ptrace": 117, "syslog": 116, "personality": 92,
    "vhangup": 58, "pivot_root": 41, "adjtimex": 171, "chroot": 51, "acct": 89,
    "settimeofday": 170, "mount": 40, "umount2": 39, "swapon": 224, "swapoff": 225,
    "reboot": 142, "init_module": 105, "delete_module": 106, "quotactl": 60,
    "nfsservctl": 42, "lookup_dcookie": 18, "clock_settime": 112, "kexec_load": 104,
    "add_key": 217, "request_key": 218, "keyctl": 219, "migrate_pages": 238,
    "unshare": 97, "move_pages": 239, "perf_event_open": 241, "name_to_handle_at": 264,
    "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268,
    "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
    "finit_module": 273, "kexec_file_load": 294, "bpf": 280, "userfaultfd": 282,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "clone3": 435, "pidfd_getfd": 438,
    "process_madvise": 440, "mount_setattr": 442, "quotactl_fd": 443,
}

# Denied with EPERM outright.  Argument-filtered calls (clone, ioctl, personality) and
# clone3 (ENOSYS) are handled separately in build_program.
DENIED_SYSCALLS = (
    # inspecting / tampering with other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "process_madvise", "move_pages", "migrate_pages",
    # kernel attack surface commonly used in exploits
    "perf_event_open", "bpf", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # modules, kexec, machine state
    "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms",
    "query_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
    "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm", "vhangup",
    "nfsservctl", "uselib", "_sysctl",
    # filesystem view: mounts and handles
    "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "name_to_handle_at",
    "open_by_handle_at",
    # namespaces
    "unshare", "setns",
)


def current_arch() -> str:
    m = platform.machine()
    if m in ("x86_64", "amd64"):
        return "x86_64"
    if m in ("aarch64", "arm64"):
        return "aarch64"
    raise OSError(f"seccomp filter not available for architecture {m!r}")


def syscall_numbers(arch: str | None = None) -> dict[str, int]:
    arch = arch or current_arch()
    return dict(_X86_64 if arch == "x86_64" else _AARCH64)


class _Asm:
    """Tiny assembler: jumps name labels, resolved to cBPF's 8-bit relative offsets."""

    def __init__(self):
        self.ins: list[tuple] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str):
        self.labels[name] = len(self.ins)

    def ld(self, off: int):
        self.ins.append((_LD_W_ABS, None, None, off))

    def jmp(self, code: int, k: int, jt: str | None, jf: str | None):
        self.ins.append((code, jt, jf, k))

    def ret(self, k: int):
        self.ins.append((_RET_K, None, None, k))

    def assemble(self) -> list[tuple[int, int, int, int]]:
        out = []
        for i, (code, jt, jf, k) in enumerate(self.ins):
            def rel(lbl):
                if lbl is None:
                    return 0
                off = self.labels[lbl] - (i + 1)
                if not 0 <= off <= 255:
                    raise ValueError(f"BPF jump to {lbl} out of range ({off})")
                return off
            out.append((code, rel(jt), rel(jf), k & 0xFFFFFFFF))
        return out


def build_program(extra_denied=(), arch: str | None = None) -> list[tuple[int, int, int, int]]:
    """Return the filter as (code, jt, jf, k) tuples; ``extra_denied`` names or numbers."""
    arch = arch or current_arch()
    nrs = syscall_numbers(arch)
    audit_arch = AUDIT_ARCH_X86_64 if arch == "x86_64" else AUDIT_ARCH_AARCH64
    denied = {nrs[n] for n in DENIED_SYSCALLS if n in nrs}
    for item in extra_denied:
        if isinstance(item, int):
            denied.add(item)
        elif item in nrs:
            denied.add(nrs[item])
        else:
            raise ValueError(f"unknown syscall name {item!r} for {arch}")
    special = {nrs["clone"], nrs["ioctl"], nrs["personality"], nrs["clone3"]}
    denied -= special

    a = _Asm()
    a.ld(_OFF_ARCH)
    a.jmp(_JEQ_K, audit_arch, None, "kill")
    a.ld(_OFF_NR)
    if arch == "x86_64":
        a.jmp(_JGE_K, X32_SYSCALL_BIT, "eperm", None)
    a.jmp(_JEQ_K, nrs["clone"], "clone", None)
    a.jmp(_JEQ_K, nrs["ioctl"], "ioctl", None)
    a.jmp(_JEQ_K, nrs["personality"], "personality", None)
    a.jmp(_JEQ_K, nrs["clone3"], "enosys", None)
    for nr in sorted(denied):
        a.jmp(_JEQ_K, nr, "eperm", None)
    a.ret(RET_ALLOW)
    # clone(2): flags are arg0 on every arch we support; namespace bits live in the
    # low word (the kernel's clone_flags upper bits hold nothing namespace related).
    a.label("clone")
    a.ld(_off_arg_lo(0))
    a.jmp(_JSET_K, NAMESPACE_CLONE_FLAGS, "eperm", "allow")
    # ioctl(2): the kernel truncates cmd to unsigned int, so the low word is exact.
    a.label("ioctl")
    a.ld(_off_arg_lo(1))
    a.jmp(_JEQ_K, TIOCSTI, "eperm", None)
    a.jmp(_JEQ_K, TIOCLINUX, "eperm", "allow")
    # personality(2): only the query (0xffffffff) and PER_LINUX (0) are allowed.
    a.label("personality")
    a.ld(_off_arg_lo(0))
    a.jmp(_JEQ_K, PERSONALITY_QUERY, "allow", None)
    a.jmp(_JEQ_K, 0, "allow", "eperm")
    a.label("allow")
    a.ret(RET_ALLOW)
    a.label("eperm")
    a.ret(RET_ERRNO | errno.EPERM)
    a.label("enosys")
    a.ret(RET_ERRNO | errno.ENOSYS)
    a.label("kill")
    a.ret(RET_KILL_PROCESS)
    return a.assemble()


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                        ctypes.c_ulong, ctypes.c_ulong]


def _prctl(option, arg2=0, arg3=None, arg4=0, arg5=0):
    if _libc.prctl(option, arg2, arg3, arg4, arg5) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl({option}): {os.strerror(e)}")


def install_filter(extra_denied=()) -> None:
    """Install the filter on the calling (single-threaded) process. Irreversible."""
    prog = build_program(extra_denied)
    arr = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), ctypes.cast(arr, ctypes.POINTER(_SockFilter)))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(ctypes.byref(fprog), ctypes.c_void_p))


def program_bytes(extra_denied=()) -> bytes:
    """The filter as raw ``struct sock_filter`` bytes (for a bwrap ``--seccomp`` fd)."""
    return b"".join(struct.pack("<HBBI", *ins) for ins in build_program(extra_denied))
