"""The cluster token reaches the node through an inherited pipe: it is on no command
line, in no node environment, in no worker's ``os.environ``, and nowhere in the sandbox
zygote (which execs with an allowlisted environment)."""
from __future__ import annotations

import os

import psutil
import pytest

import actorium
from actorium.core import api

TOKEN = "secret-cluster-token-" + "7" * 43


@pytest.fixture
def embedded(monkeypatch):
    """An embedded cluster given TOKEN explicitly, with TOKEN also in the driver's
    environment (where a careless launcher would copy it from)."""
    monkeypatch.setenv("ACTORIUM_TOKEN", TOKEN)
    actorium.init(num_cpus=1, token=TOKEN)
    try:
        node = psutil.Process(api._session.proc.pid)
        yield node, [node] + node.children(recursive=True)
    finally:
        actorium.shutdown()


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_token_is_not_on_any_cluster_command_line(embedded):
    _, procs = embedded
    assert len(procs) >= 3  # node, zygotes, gcs, workers
    for proc in procs:
        assert TOKEN.encode() not in _read(f"/proc/{proc.pid}/cmdline"), proc.cmdline()


def test_token_is_not_in_the_node_environment(embedded):
    node, _ = embedded
    assert TOKEN.encode() not in _read(f"/proc/{node.pid}/environ")


def test_token_is_not_visible_to_the_sandbox_zygote(embedded):
    _, procs = embedded
    zygotes = [p for p in procs if "actorium.isolation.service" in " ".join(p.cmdline())]
    assert len(zygotes) == 1, [p.cmdline() for p in procs]
    pid = zygotes[0].pid
    assert TOKEN.encode() not in _read(f"/proc/{pid}/environ")
    assert TOKEN.encode() not in _read(f"/proc/{pid}/cmdline")
    assert b"ACTORIUM_TOKEN" not in _read(f"/proc/{pid}/environ")


def test_token_is_not_in_a_workers_environment(embedded):
    @actorium.remote
    def token_variables():
        return {k: v for k, v in os.environ.items() if "ACTORIUM_TOKEN" in k}
    assert actorium.get(token_variables.remote(), timeout=30) == {}
