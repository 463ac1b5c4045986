"""SandboxPolicy: the limits and grants of one sandbox, validated at construction.

Invariants: a constructed policy is internally consistent (sizes parsed to positive byte
counts, paths absolute and normalised, env names allowlisted), immutable and hashable
except for the ``files``/``env`` mappings, which are copied into read-only proxies.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["SandboxPolicy", "parse_size"]

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000 ** 2,
          "mb": 1000 ** 2, "mib": 1024 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3,
          "gib": 1024 ** 3}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# Extra environment variables a policy may pass in.  Anything that changes how the
# interpreter or loader behaves (LD_*, PYTHON* except PYTHONPATH handled by us) is refused.
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REFUSED_PREFIXES = ("LD_", "PYTHON", "GCONV", "MALLOC_", "GLIBC_")


def parse_size(value, what: str = "size") -> int:
    """'256MiB' -> 268435456; ints pass through.  Raises ValueError with ``what``."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a size like '256MiB', got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        unit = m.group(2).lower() if m else None
        if not m or unit not in _UNITS:
            raise ValueError(f"{what}: cannot parse size {value!r} "
                             "(use e.g. 512, '64KiB', '256MiB', '1GiB')")
        n = int(float(m.group(1)) * _UNITS[unit])
    else:
        raise ValueError(f"{what}: expected int or str, got {type(value).__name__}")
    if n <= 0:
        raise ValueError(f"{what}: must be positive, got {value!r}")
    return n


def _positive_number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what}: must be a positive number, got {value!r}")
    return value


def _abs_path(p, what: str) -> str:
    if not isinstance(p, str) or not p.startswith("/"):
        raise ValueError(f"{what}: path must be an absolute str, got {p!r}")
    norm = os.path.normpath(p)
    if norm in ("/", "/proc", "/dev") or norm.startswith(("/proc/", "/dev/")):
        raise ValueError(f"{what}: path {p!r} is reserved by the jail")
    return norm


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits and grants for one sandbox.

    memory           cgroup memory limit and address-space budget ('256MiB' or bytes)
    cpu_seconds      RLIMIT_CPU of the jailed process (seconds of CPU time)
    wall_seconds     wall-clock limit enforced by the parent (kill on expiry)
    network          False: own network namespace with loopback only.  True: the host
                     network namespace (egress allowed; see docs/security.md)
    files            {absolute path: bytes} written read-only into the jail before start
    max_output_bytes cap on stdout+stderr (and on the result message)
    max_processes    pids cgroup limit (and RLIMIT_NPROC fallback)
    tmp_size         size of the private writable /tmp tmpfs
    allowed_paths    extra host paths bind-mounted read-only at the same location
    env              extra environment variables (names allowlisted: no LD_*, PYTHON*)
    cpu_quota        cgroup CPU bandwidth in cores (1.0 = one full core)
    max_open_files   RLIMIT_NOFILE
    max_file_size    RLIMIT_FSIZE (largest file the sandbox may write)
    backend          "builtin" (our own namespaces and mounts) or "bwrap" (bubblewrap
                     builds them; needs ``bwrap`` on PATH); the rest of the jail, our
                     seccomp filter included, is the same. Default: the
                     ACTORIUM_SANDBOX_BACKEND environment variable, else "builtin"
    """

    memory: int | str = "256MiB"
    cpu_seconds: float = 10
    wall_seconds: float = 30
    network: bool = False
    files: dict = field(default_factory=dict)
    max_output_bytes: int | str = 1024 * 1024
    max_processes: int = 32
    tmp_size: int | str = "64MiB"
    allowed_paths: tuple = ()
    env: dict = field(default_factory=dict)
    cpu_quota: float = 1.0
    max_open_files: int = 256
    max_file_size: int | str = "64MiB"
    backend: str = field(default_factory=lambda: os.environ.get("ACTORIUM_SANDBOX_BACKEND",
                                                                "builtin"))

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise fields once, here
        if self.backend not in ("builtin", "bwrap"):
            raise ValueError(f"backend: must be 'builtin' or 'bwrap', got {self.backend!r}")
        if self.backend == "bwrap" and shutil.which("bwrap") is None:
            raise ValueError("backend: 'bwrap' needs bubblewrap on PATH (install the "
                             "bubblewrap package) or use the built-in jail")
        set_(self, "memory", parse_size(self.memory, "memory"))
        if self.memory < 16 * 1024 * 1024:
            raise ValueError("memory: at least 16MiB is needed to run Python")
        set_(self, "cpu_seconds", _positive_number(self.cpu_seconds, "cpu_seconds"))
        set_(self, "wall_seconds", _positive_number(self.wall_seconds, "wall_seconds"))
        set_(self, "cpu_quota", _positive_number(self.cpu_quota, "cpu_quota"))
        if not isinstance(self.network, bool):
            raise ValueError(f"network: must be True or False, got {self.network!r}")
        set_(self, "max_output_bytes", parse_size(self.max_output_bytes, "max_output_bytes"))
        set_(self, "tmp_size", parse_size(self.tmp_size, "tmp_size"))
        set_(self, "max_file_size", parse_size(self.max_file_size, "max_file_size"))
        for name in ("max_processes", "max_open_files"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive int, got {v!r}")
        if self.max_open_files < 16:
            raise ValueError("max_open_files: at least 16 are needed to run Python")
        if not isinstance(self.files, dict):
            raise ValueError("files: must be a dict {absolute path: bytes}")
        files = {}
        for p, data in self.files.items():
            norm = _abs_path(p, "files")
            if norm == "/tmp" or norm.startswith("/tmp/"):
                raise ValueError(f"files: {p!r}: /tmp is the writable scratch space; "
                                 "put input files elsewhere, e.g. /data")
            if not isinstance(data, (bytes, bytearray)):
                raise ValueError(f"files: content for {p!r} must be bytes")
            files[norm] = bytes(data)
        set_(self, "files", MappingProxyType(files))
        if isinstance(self.allowed_paths, (str, bytes)) or not isinstance(
                self.allowed_paths, (tuple, list)):
            raise ValueError("allowed_paths: must be a tuple of absolute paths")
        set_(self, "allowed_paths",
             tuple(_abs_path(p, "allowed_paths") for p in self.allowed_paths))
        if not isinstance(self.env, dict):
            raise ValueError("env: must be a dict {name: value}")
        for k, v in self.env.items():
            if not isinstance(k, str) or not _ENV_NAME_RE.match(k):
                raise ValueError(f"env: invalid variable name {k!r}")
            if k.upper().startswith(_ENV_REFUSED_PREFIXES) or k in ("PATH", "HOME"):
                raise ValueError(f"env: variable {k!r} is not allowed in a sandbox")
            if not isinstance(v, str) or "\0" in v:
                raise ValueError(f"env: value of {k!r} must be a str without NUL")
        set_(self, "env", MappingProxyType(dict(self.env)))

    def __hash__(self):
        return hash((self.memory, self.cpu_seconds, self.wall_seconds, self.network,
                     tuple(sorted(self.files)), self.max_output_bytes,
                     self.max_processes, self.tmp_size, self.allowed_paths,
                     tuple(sorted(self.env.items())), self.backend))
