"""Shared fixtures: every test that starts a cluster tears it down, even on failure."""
from __future__ import annotations

import glob
import os

import psutil
import pytest

import actorium


@pytest.fixture
def cluster():
    """A fresh embedded 2-CPU cluster for one test."""
    actorium.init(num_cpus=2)
    try:
        yield
    finally:
        actorium.shutdown()


@pytest.fixture(scope="module")
def shared_cluster():
    """One embedded cluster for a whole test module (for tests that leave no state)."""
    actorium.init(num_cpus=2)
    try:
        yield
    finally:
        actorium.shutdown()


def actorium_processes() -> list:
    """Processes started by actorium (node daemons and workers) still alive."""
    out = []
    for p in psutil.process_iter(["cmdline", "pid"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "actorium.raylet.node" in cmd and p.pid != os.getpid():
            out.append(p)
    return out


def shm_leftovers() -> list:
    return glob.glob("/dev/shm/actorium/*")
