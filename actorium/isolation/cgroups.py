"""Per-sandbox cgroup (v1 memory/pids/cpu, or a v2 unified tree) limits.

Invariants
----------
* Created by the *trusted* side before the sandbox runs; the sandbox joins it while it
  still holds root (before dropping to its unprivileged uid), so every process the
  sandbox ever forks is accounted and limited.
* Each sandbox cgroup lives under ``<caller's own cgroup>/actorium/`` in every hierarchy,
  not under the hierarchy root: the limits of whatever contains the caller stay in force
  (a sandbox can never gain memory or pids by being moved out of its caller's cgroup).
* ``remove`` kills whatever is left inside before removing the directories; a sandbox
  cgroup never outlives ``runner.run_snippet``.
* Not writable (non-root, read-only cgroupfs): ``create`` returns None and the jail falls
  back to rlimits only.  That is logged in the result, never silently claimed.
"""
from __future__ import annotations

import itertools
import os
import signal
import time

__all__ = ["SandboxCgroup", "CGROUP_ROOT"]

CGROUP_ROOT = "/sys/fs/cgroup"
_V1_CONTROLLERS = ("memory", "pids", "cpu")
_counter = itertools.count()
CPU_PERIOD_US = 100_000


def _own_cgroup(controller: str) -> str | None:
    """Path of the caller's cgroup in ``controller``'s v1 hierarchy, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, rel = line.rstrip("\n").split(":", 2)
                if controller in ctrls.split(","):
                    return rel
    except OSError:
        pass
    return None


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read_kv(path: str) -> dict[str, int]:
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                    out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out



def rmdir_when_gone(path: str, deadline: float, on_busy=None) -> bool:
    """Remove a cgroup directory; rmdir answers EBUSY until the kernel has finished
    tearing down its last (already exited or killed) task, so retry until ``deadline``,
    calling ``on_busy`` between tries. True once it is gone."""
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            if on_busy is not None:
                on_busy()
            time.sleep(0.002)

class SandboxCgroup:
    """A set of per-sandbox cgroup directories, one per v1 controller."""

    def __init__(self, dirs: dict[str, str]):
        self.dirs = dirs  # controller -> directory

    @classmethod
    def create(cls, policy, name: str | None = None) -> "SandboxCgroup | None":
        if os.geteuid() != 0:
            return None
        name = name or f"sbx-{os.getpid()}-{next(_counter)}-{os.urandom(3).hex()}"
        dirs: dict[str, str] = {}
        try:
            for ctrl in _V1_CONTROLLERS:
                base = os.path.join(CGROUP_ROOT, ctrl)
                rel = _own_cgroup(ctrl)
                if rel is None or not os.path.isdir(base):
                    continue
                parent = os.path.join(base + rel.rstrip("/"), "actorium")
                d = os.path.join(parent, name)
                for _ in range(3):  # a concurrent remove() may rmdir the shared parent
                    os.makedirs(parent, exist_ok=True)
                    try:
                        os.mkdir(d)
                        break
                    except FileNotFoundError:
                        continue
                dirs[ctrl] = d
            cg = cls(dirs)
            cg._apply(policy)
        except OSError:
            cls(dirs).remove()
            return None
        return cg if dirs else None

    def rename(self, name: str) -> None:
        """Rename the cgroup in every controller (v1 allows it within one parent): a
        pre-started jail becomes an ordinary sandbox when it takes its request."""
        for ctrl, d in list(self.dirs.items()):
            new = os.path.join(os.path.dirname(d), name)
            try:
                os.rename(d, new)
                self.dirs[ctrl] = new
            except OSError:
                pass

    def _apply(self, policy) -> None:
        if "memory" in self.dirs:
            d = self.dirs["memory"]
            _write(os.path.join(d, "memory.limit_in_bytes"), policy.memory)
            try:  # with swap present, also cap memory+swap so the limit is real
                _write(os.path.join(d, "memory.memsw.limit_in_bytes"), policy.memory)
            except OSError:
                pass
        if "pids" in self.dirs:
            _write(os.path.join(self.dirs["pids"], "pids.max"), policy.max_processes)
        if "cpu" in self.dirs:
            d = self.dirs["cpu"]
            _write(os.path.join(d, "cpu.cfs_period_us"), CPU_PERIOD_US)
            _write(os.path.join(d, "cpu.cfs_quota_us"),
                   max(1000, int(policy.cpu_quota * CPU_PERIOD_US)))

    def join(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the caller) into every controller's cgroup."""
        for d in self.dirs.values():
            _write(os.path.join(d, "cgroup.procs"), pid or os.getpid())

    def stats(self) -> dict[str, int]:
        """Counters that tell which limit was hit: oom kills, pids.max refusals."""
        out = {"oom_kill": 0, "memory_failcnt": 0, "pids_max": 0}
        if "memory" in self.dirs:
            d = self.dirs["memory"]
            out["oom_kill"] = _read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)
            try:
                with open(os.path.join(d, "memory.failcnt")) as f:
                    out["memory_failcnt"] = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pass
        if "pids" in self.dirs:
            out["pids_max"] = _read_kv(os.path.join(self.dirs["pids"], "pids.events")).get("max", 0)
        return out

    def pids(self) -> list[int]:
        seen: set[int] = set()
        for d in self.dirs.values():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    seen.update(int(x) for x in f.read().split())
            except (OSError, ValueError):
                pass
        return sorted(seen)

    def kill_all(self, timeout: float = 2.0) -> bool:
        """SIGKILL everything inside until empty; True when empty."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return True
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    def remove(self, timeout: float = 2.0) -> bool:
        """Kill leftovers and remove the directories; True when all are gone."""
        self.kill_all(timeout)
        ok = True
        deadline = time.monotonic() + timeout
        for d in self.dirs.values():
            ok &= rmdir_when_gone(d, deadline, lambda: self.kill_all(0.1))
            try:  # the shared "actorium" parent goes when the last sandbox goes
                os.rmdir(os.path.dirname(d))
            except OSError:
                pass  # other sandboxes still running (ENOTEMPTY/EBUSY)
        return ok


def orphaned() -> list[str]:
    """Sandbox cgroup directories whose creating process is gone. Names embed the
    creator's pid (``sbx-<pid>-...``, ``spare-<pid>-...``)."""
    out = []
    for ctrl in _V1_CONTROLLERS:
        rel = _own_cgroup(ctrl)
        if rel is None:
            continue
        parent = os.path.join(CGROUP_ROOT, ctrl + rel.rstrip("/"), "actorium")
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            kind, _, rest = name.partition("-")
            pid = rest.split("-", 1)[0]
            if kind in ("sbx", "spare") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                out.append(os.path.join(parent, name))
    return out


def sweep_orphans() -> int:
    """Remove the orphaned sandbox cgroups that are empty (a handler killed outright, by
    SIGKILL, cannot remove its own; rmdir refuses a cgroup that still holds a task).
    Returns how many were removed."""
    removed = 0
    for d in orphaned():
        try:
            os.rmdir(d)
            removed += 1
        except OSError:
            pass
    return removed
