"""Small helpers shared by tests (importable because tests/ is on sys.path via conftest)."""
from __future__ import annotations

import time

import psutil


def actorium_node_pids(session: str = "") -> list[int]:
    """Pids of actorium node processes (and their workers), optionally of one session."""
    pids = []
    for p in psutil.process_iter(["cmdline", "pid"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except psutil.Error:
            continue
        if "actorium.raylet.node" in cmd and (not session or session in cmd):
            pids.append(p.pid)
    return pids


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def store_usage() -> dict:
    """Usage of this node's object store as the driver sees it."""
    from actorium.core.objects.object_ref import _worker
    return _worker.store.usage()
