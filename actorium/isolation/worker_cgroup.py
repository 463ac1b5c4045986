"""Cgroups of right-sized (``resources="auto"``) actor workers: a CPU quota and a
memory limit that the raylet moves while the worker runs.

Invariants
----------
* One directory per worker under ``<the raylet's own cgroup>/actorium/`` in each
  hierarchy (v1: ``cpu`` and ``memory``; v2: the unified tree), like the sandbox
  cgroups (cgroups.py), so whatever limits the raylet stays in force over its workers.
* Names embed the raylet's pid (``auto-<pid>-<worker>``): a raylet killed outright
  leaves empty directories that the next raylet's ``sweep`` removes.
* v1: the OOM killer is disabled in the worker's memory cgroup, so a worker whose
  memory grows faster than one sample period *stalls* at its limit until the raylet
  raises it (under_oom is reported), instead of being killed for a limit it was about
  to be given. At the node's cap the OOM killer is switched back on.
* Not writable (not root, read-only cgroupfs, v2 without delegated controllers):
  ``Controller.mode`` is "" and everything is a no-op; the raylet logs that once and
  keeps accounting.
"""
from __future__ import annotations

import os
import time

from actorium.isolation.cgroups import (CGROUP_ROOT, CPU_PERIOD_US, _own_cgroup, _write,
                                       rmdir_when_gone)

__all__ = ["Controller", "WorkerCgroup"]

_V1 = ("cpu", "memory")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _own_v2() -> str | None:
    try:
        for line in _read("/proc/self/cgroup").splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None


class WorkerCgroup:
    __slots__ = ("dirs", "cpu", "memory", "oom_killer")

    def __init__(self, dirs: dict):
        self.dirs = dirs      # v1: controller -> dir; v2: {"unified": dir}
        self.cpu = -1.0       # the quota last written (cores), -1: none yet
        self.memory = -1.0    # the memory limit last written (bytes)
        self.oom_killer = True


class Controller:
    """Creates, moves and removes worker cgroups; ``mode`` is "v1", "v2" or ""."""

    def __init__(self, prefix: str):
        self.prefix = prefix  # "auto-<raylet pid>"
        self.mode, self.parents, self.why = self._probe()

    def _probe(self) -> tuple[str, dict, str]:
        if os.environ.get("ACTORIUM_AUTO_CGROUPS", "1") == "0":
            return "", {}, "ACTORIUM_AUTO_CGROUPS=0"
        if os.geteuid() != 0:
            return "", {}, "the raylet does not run as root"
        if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
            return self._probe_v2()
        parents = {}
        for ctrl in _V1:
            rel = _own_cgroup(ctrl)
            base = os.path.join(CGROUP_ROOT, ctrl)
            if rel is None or not os.path.isdir(base):
                return "", {}, f"no cgroup v1 {ctrl} hierarchy is mounted"
            parents[ctrl] = os.path.join(base + rel.rstrip("/"), "actorium")
        try:
            for d in parents.values():
                os.makedirs(d, exist_ok=True)
        except OSError as exc:
            return "", {}, f"cgroups are not writable ({exc})"
        return "v1", parents, ""

    def _probe_v2(self) -> tuple[str, dict, str]:
        rel = _own_v2()
        if rel is None:
            return "", {}, "the raylet's cgroup v2 is unknown"
        own = CGROUP_ROOT + rel.rstrip("/")
        parent = os.path.join(own, "actorium")
        try:
            # v2 delegates cpu/memory only down a chain of subtree_control files; the
            # raylet's own cgroup holds processes, so this fails unless it is the root
            # or a delegated, otherwise empty cgroup (systemd Delegate=yes and a leaf).
            _write(os.path.join(own, "cgroup.subtree_control"), "+cpu +memory")
            os.makedirs(parent, exist_ok=True)
            _write(os.path.join(parent, "cgroup.subtree_control"), "+cpu +memory")
        except OSError as exc:
            return "", {}, f"cgroup v2 cpu/memory controllers cannot be delegated here ({exc})"
        return "v2", {"unified": parent}, ""

    # -- one worker ---------------------------------------------------------------
    def create(self, name: str, pid: int) -> WorkerCgroup | None:
        """A cgroup for worker ``pid`` (moved into it now); None when disabled or the
        pid is gone."""
        if not self.mode:
            return None
        dirs = {}
        try:
            for key, parent in self.parents.items():
                d = os.path.join(parent, f"{self.prefix}-{name}")
                os.makedirs(parent, exist_ok=True)
                os.makedirs(d, exist_ok=True)
                dirs[key] = d
            cg = WorkerCgroup(dirs)
            if self.mode == "v1":
                _write(os.path.join(dirs["memory"], "memory.oom_control"), 1)
                cg.oom_killer = False
                _write(os.path.join(dirs["cpu"], "cpu.cfs_period_us"), CPU_PERIOD_US)
            for d in dirs.values():
                _write(os.path.join(d, "cgroup.procs"), pid)
        except OSError:
            self.remove(WorkerCgroup(dirs))
            return None
        return cg

    def set_limits(self, cg: WorkerCgroup, cpu: float, memory: float, at_cap: bool) -> None:
        """Write the quota and memory limit when they changed; ``at_cap``: the memory
        limit is all the node has, so v1's OOM killer goes back on."""
        try:
            if cpu != cg.cpu:
                quota = max(1000, int(cpu * CPU_PERIOD_US))
                if self.mode == "v1":
                    _write(os.path.join(cg.dirs["cpu"], "cpu.cfs_quota_us"), quota)
                else:
                    _write(os.path.join(cg.dirs["unified"], "cpu.max"), f"{quota} {CPU_PERIOD_US}")
                cg.cpu = cpu
            if memory != cg.memory:
                self._set_memory(cg, int(memory))
                cg.memory = memory
            if self.mode == "v1" and at_cap == (not cg.oom_killer):
                _write(os.path.join(cg.dirs["memory"], "memory.oom_control"), 0 if at_cap else 1)
                cg.oom_killer = at_cap
        except OSError:
            pass  # the worker is exiting; its cgroup goes with it

    def _set_memory(self, cg: WorkerCgroup, limit: int) -> None:
        if self.mode == "v2":
            d = cg.dirs["unified"]
            # memory.high throttles and reclaims instead of killing; max is the hard stop.
            _write(os.path.join(d, "memory.max"), limit)
            _write(os.path.join(d, "memory.high"), max(limit - limit // 8, 1 << 20))
            return
        path = os.path.join(cg.dirs["memory"], "memory.limit_in_bytes")
        try:
            _write(path, limit)
        except OSError:
            # Lowering below current use is refused (EBUSY); the next sample retries.
            cg.memory = -1.0
            raise

    def memory_use(self, cg: WorkerCgroup) -> tuple[int, bool] | None:
        """(bytes charged, stalled at the limit) as the cgroup counts them, None if
        unreadable. Charged memory is what the limit applies to, so it is what limits
        follow (it includes the worker's page cache)."""
        try:
            if self.mode == "v1":
                d = cg.dirs["memory"]
                used = int(_read(os.path.join(d, "memory.usage_in_bytes")))
                stalled = "under_oom 1" in _read(os.path.join(d, "memory.oom_control"))
                return used, stalled
            d = cg.dirs["unified"]
            used = int(_read(os.path.join(d, "memory.current")))
            high = 0
            for line in _read(os.path.join(d, "memory.events")).splitlines():
                if line.startswith("high "):
                    high = int(line.split()[1])
            return used, high > 0 and used >= 0.95 * max(cg.memory, 1)
        except (OSError, ValueError):
            return None

    def remove(self, cg: WorkerCgroup, timeout: float = 1.0) -> None:
        """Remove the directories (the worker has exited; rmdir is refused while the
        kernel still tears down its last task, so retry briefly)."""
        deadline = time.monotonic() + timeout
        for d in cg.dirs.values():
            rmdir_when_gone(d, deadline)

    def sweep(self) -> int:
        """Remove empty worker cgroups of raylets that are gone; returns how many."""
        removed = 0
        for parent in self.parents.values():
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            for name in names:
                kind, _, rest = name.partition("-")
                pid = rest.split("-", 1)[0]
                if kind == "auto" and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    try:
                        os.rmdir(os.path.join(parent, name))
                        removed += 1
                    except OSError:
                        pass
        return removed

    def close(self) -> None:
        """At node shutdown: the shared ``actorium`` parents go when nothing else uses
        them (sandboxes of the same process tree may still)."""
        for parent in self.parents.values():
            try:
                os.rmdir(parent)
            except OSError:
                pass
