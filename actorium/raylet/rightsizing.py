"""The raylet's sampler: the measured CPU and memory of every actor worker, and for
``resources="auto"`` actors the reservation the node packs by and the cgroup limits
that follow their use (policy: scheduling/rightsize.py; cgroups:
isolation/worker_cgroup.py).

Every ``rightsize.SAMPLE_PERIOD`` the raylet makes one pass over its actor workers:
CPU is the process's user+system time since the last pass over the wall time between
them (psutil reads ``/proc/<pid>/stat``); memory is what the worker's cgroup is charged
(the figure its limit applies to) or, without a cgroup, resident minus shared pages
(pages shared with the zygote are not the actor's). A pass costs two small /proc reads
per actor.

An auto actor's reservation replaces its slice of the node's ``available``, so the
heartbeat, spillback, actor placement and ``actorium.available_resources()`` all see
the measured packing. When the node cannot give it what it wants, it keeps what it
has, is marked outgrown (logged once per episode, shown by ``actorium list actors``)
and the gcs is told (``ActorOutgrown``), which moves it when it is durable.
"""
from __future__ import annotations

import os
import sys
import time

import psutil

from actorium.core.wire import protocol
from actorium.isolation.worker_cgroup import Controller
from actorium.scheduling import resources as res
from actorium.scheduling import rightsize

SIZED = ("CPU", "memory")


class _Tracked:
    __slots__ = ("proc", "cpu_time", "at", "cgroup", "usage", "cpu", "memory")

    def __init__(self, proc, cpu_time: float, at: float):
        self.proc = proc
        self.cpu_time = cpu_time
        self.at = at
        self.cgroup = None
        self.usage: rightsize.Usage | None = None  # auto actors only
        self.cpu = 0.0
        self.memory = 0


class RightSizer:
    def __init__(self, raylet):
        self.raylet = raylet
        self.tracked: dict[bytes, _Tracked] = {}
        self._cgroups: Controller | None = None
        self.period = rightsize.SAMPLE_PERIOD

    @property
    def cgroups(self) -> Controller:
        """Probed on the first auto actor, so nodes without any never touch cgroupfs."""
        if self._cgroups is None:
            self._cgroups = Controller(f"auto-{os.getpid()}")
            self._cgroups.sweep()
            if not self._cgroups.mode:
                print(f"raylet: resources='auto' actors are accounted by measured use but "
                      f"not limited: {self._cgroups.why}", file=sys.stderr, flush=True)
        return self._cgroups

    def sample(self) -> None:
        now = time.monotonic()
        before = self.raylet.available.get("CPU", 0.0), self.raylet.available.get("memory", 0.0)
        for w in list(self.raylet.workers.values()):
            if w.state != "actor" or not w.pid:
                continue
            t = self.tracked.get(w.worker_id)
            try:
                if t is None:
                    self._adopt(w, now)
                    continue
                times = t.proc.cpu_times()
                mem = t.proc.memory_info()
            except psutil.Error:
                continue  # exiting; the zygote's report will forget it
            cpu_time = times.user + times.system
            t.cpu = max(0.0, (cpu_time - t.cpu_time) / max(now - t.at, 1e-3))
            t.cpu_time, t.at = cpu_time, now
            t.memory = max(0, mem.rss - mem.shared)
            if t.usage is not None:
                self._resize(w, t, now)
        after = self.raylet.available.get("CPU", 0.0), self.raylet.available.get("memory", 0.0)
        if (after[0] > before[0] or after[1] > before[1]) and \
                (self.raylet.pending_actors or self.raylet.requests):
            self.raylet._dispatch()  # reservations shrank: queued work may fit now

    def _adopt(self, w, now: float) -> None:
        proc = psutil.Process(w.pid)
        times = proc.cpu_times()
        t = _Tracked(proc, times.user + times.system, now)
        if w.auto:
            t.usage = rightsize.Usage(*self._caps())
            t.cgroup = self.cgroups.create(w.worker_id.hex()[:16], w.pid)
            if t.cgroup is not None:
                self.cgroups.set_limits(t.cgroup, t.usage.cpu_limit, t.usage.memory_limit,
                                        False)
        self.tracked[w.worker_id] = t

    def _caps(self) -> tuple[float, float]:
        total = self.raylet.total
        return total.get("CPU", 1.0) or 1.0, total.get("memory", 0.0) or float(1 << 40)

    def _resize(self, w, t: _Tracked, now: float) -> None:
        u = t.usage
        memory, stalled = float(t.memory), False
        if t.cgroup is not None:
            charged = self.cgroups.memory_use(t.cgroup)
            if charged is not None:
                # Pages the worker touched before it joined stay charged elsewhere but
                # are still its own: count whichever figure is larger.
                memory, stalled = max(memory, float(charged[0])), charged[1]
        t.memory = int(memory)
        cap_cpu, cap_mem = self._caps()
        rightsize.observe(u, now, t.cpu, memory, cap_cpu, cap_mem, stalled)
        held = {k: w.shape.get(k, 0.0) for k in SIZED}
        available = self.raylet.available
        res.add(available, held)
        granted, short = rightsize.grant(u.reserved, {}, available, self.raylet.total)
        res.subtract(available, granted)
        w.shape.update(granted)
        if t.cgroup is not None:
            self.cgroups.set_limits(t.cgroup, u.cpu_limit, u.memory_limit,
                                    u.memory_limit >= cap_mem)
        if bool(short) != bool(u.outgrown):
            self._report(w, u, short)
        u.outgrown = short

    def _report(self, w, u, short: str) -> None:
        if short:
            print(f"raylet: actor {w.actor_id.hex()} has outgrown this node: {short} "
                  f"(measured cpu {u.cpu:.2f}, memory {u.memory / rightsize.MiB:.0f} MiB)",
                  file=sys.stderr, flush=True)
        self.raylet.gcs.send(protocol.encode(protocol.ActorOutgrown(
            w.actor_id, self.raylet.node_id, dict(u.reserved), short)))

    def forget(self, w) -> None:
        t = self.tracked.pop(w.worker_id, None)
        if t is not None and t.cgroup is not None:
            self.cgroups.remove(t.cgroup)

    def info(self) -> dict:
        """actor id (hex) -> measured use, and for auto actors reservation and limits."""
        out = {}
        for w in self.raylet.workers.values():
            t = self.tracked.get(w.worker_id)
            if t is None or not w.actor_id:
                continue
            entry = {"cpu": round(t.cpu, 3), "memory": t.memory, "auto": t.usage is not None,
                     "reserved": {k: v for k, v in w.shape.items()}}
            if t.usage is not None:
                entry.update(t.usage.info(), memory=t.memory, reserved=dict(w.shape),
                             limited=t.cgroup is not None)
            out[w.actor_id.hex()] = entry
        return out

    def close(self) -> None:
        for wid in list(self.tracked):
            t = self.tracked.pop(wid)
            if t.cgroup is not None:
                self.cgroups.remove(t.cgroup, timeout=2.0)
        if self._cgroups is not None:
            self._cgroups.close()
