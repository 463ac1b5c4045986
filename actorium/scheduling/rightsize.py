"""Right-sizing policy for ``resources="auto"`` actors, as pure functions.

An auto actor has two numbers per resource, recomputed at every sample of its process:

* its **reservation**: what the node's packing subtracts from ``available`` — the peak
  use over a sliding window plus ``HEADROOM``, never below a small floor. The window
  makes a short burst hold its room for a while instead of flapping.
* its **limit**: the cgroup ceiling (CPU quota, memory limit) — generous, because a
  limit the process touches throttles it (CPU) or stalls it (memory). It doubles at
  once when use reaches ``GROW_AT`` of it, and shrinks to twice the peak when use falls,
  so it follows use both ways without oscillating (the gap between x2 and 80% is the
  hysteresis). Both are capped at what the node has.

The raylet feeds samples and applies what comes out (actorium/raylet/rightsizing.py);
nothing here reads a clock or a file, so the policy is testable on its own.
"""
from __future__ import annotations

import collections
import os

MiB = 1 << 20


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a number, got {os.environ[name]!r}") from None


SAMPLE_PERIOD = _env("ACTORIUM_AUTO_SAMPLE_PERIOD", 0.5)   # seconds between samples
WINDOW = _env("ACTORIUM_AUTO_WINDOW", 5.0)                 # seconds a peak is remembered
HEADROOM = _env("ACTORIUM_AUTO_HEADROOM", 0.25)            # reservation = peak * (1 + this)
INITIAL_CPU = _env("ACTORIUM_AUTO_INITIAL_CPU", 0.1)       # reserved before the first sample
INITIAL_MEMORY = _env("ACTORIUM_AUTO_INITIAL_MEMORY", 64 * MiB)
MIN_CPU = _env("ACTORIUM_AUTO_MIN_CPU", 0.05)              # reservation floor
MIN_MEMORY = _env("ACTORIUM_AUTO_MIN_MEMORY", 32 * MiB)
MIN_CPU_LIMIT = 0.1                                        # quota floor: 10 ms per 100 ms
MIN_MEMORY_LIMIT = _env("ACTORIUM_AUTO_MIN_MEMORY_LIMIT", 256 * MiB)
GROW_AT = 0.8                                              # use/limit that doubles the limit


def initial_shape() -> dict:
    """What a new auto actor is placed and started with, before anything is measured."""
    return {"CPU": INITIAL_CPU, "memory": float(INITIAL_MEMORY)}


class Usage:
    """The measured use of one auto actor and the reservation and limits it implies."""

    __slots__ = ("samples", "cpu", "memory", "reserved", "cpu_limit", "memory_limit",
                 "outgrown")

    def __init__(self, cap_cpu: float, cap_memory: float):
        self.samples: collections.deque = collections.deque()  # (t, cpu, memory)
        self.cpu = 0.0        # last sample: cores in use
        self.memory = 0.0     # last sample: bytes
        self.reserved = initial_shape()
        self.cpu_limit = min(cap_cpu, max(MIN_CPU_LIMIT, 2 * INITIAL_CPU))
        self.memory_limit = min(cap_memory, float(max(MIN_MEMORY_LIMIT, 2 * INITIAL_MEMORY)))
        self.outgrown = ""    # why it does not fit its node any more ("" : it fits)

    def peak(self) -> tuple[float, float]:
        return (max(s[1] for s in self.samples), max(s[2] for s in self.samples))

    def info(self) -> dict:
        return {"cpu": round(self.cpu, 3), "memory": int(self.memory),
                "reserved": dict(self.reserved), "cpu_limit": round(self.cpu_limit, 3),
                "memory_limit": int(self.memory_limit), "outgrown": self.outgrown}


def observe(u: Usage, now: float, cpu: float, memory: float, cap_cpu: float,
            cap_memory: float, memory_stalled: bool = False) -> None:
    """Record one sample and recompute the wanted reservation and limits (capped at the
    node's ``cap_*``); the caller decides how much of the reservation the node grants."""
    u.cpu, u.memory = cpu, memory
    u.samples.append((now, cpu, memory))
    while u.samples and u.samples[0][0] < now - WINDOW:
        u.samples.popleft()
    peak_cpu, peak_mem = u.peak()
    u.reserved = {"CPU": max(MIN_CPU, peak_cpu * (1 + HEADROOM)),
                  "memory": float(max(MIN_MEMORY, peak_mem * (1 + HEADROOM)))}
    if cpu >= GROW_AT * u.cpu_limit:
        u.cpu_limit = u.cpu_limit * 2
    else:
        u.cpu_limit = min(u.cpu_limit, max(MIN_CPU_LIMIT, 2 * peak_cpu))
    u.cpu_limit = min(cap_cpu, max(u.cpu_limit, MIN_CPU_LIMIT))
    if memory_stalled or memory >= GROW_AT * u.memory_limit:
        u.memory_limit = max(u.memory_limit * 2, memory * 2)
    else:
        u.memory_limit = min(u.memory_limit, max(MIN_MEMORY_LIMIT, 2 * peak_mem))
    u.memory_limit = float(min(cap_memory, max(u.memory_limit, MIN_MEMORY_LIMIT)))


def grant(wanted: dict, held: dict, available: dict, total: dict) -> tuple[dict, str]:
    """How much of ``wanted`` a node can give an actor now holding ``held``, given the
    node's ``available`` (which does not include ``held``): the wanted amounts where
    there is room, else as much as there is, with the reason it has outgrown the node."""
    granted, short = {}, []
    for k, want in wanted.items():
        room = available.get(k, 0.0) + held.get(k, 0.0)
        if want <= room + 1e-9:
            granted[k] = want
        else:
            granted[k] = max(held.get(k, 0.0), min(want, max(room, 0.0)))
            short.append(f"{k} {_fmt(k, want)} wanted, {_fmt(k, max(room, 0.0))} free of "
                         f"{_fmt(k, total.get(k, 0.0))}")
    return granted, "; ".join(short)


def _fmt(key: str, v: float) -> str:
    return f"{v / MiB:.0f} MiB" if key == "memory" else f"{v:.2f}"
