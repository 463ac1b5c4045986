"""Sandboxed and durable execution plug into the core through core/runtimes.py; every
process of a cluster has them registered without the user doing anything."""
from __future__ import annotations

import subprocess
import sys

import pytest

import actorium
from actorium.core import runtimes


@actorium.remote
def registered_here():
    from actorium.core import runtimes
    return runtimes.isolation_names(), sorted(r.name for r in runtimes.actor_runtimes())


def test_a_driver_has_the_sandbox_and_the_durable_runtime_registered():
    assert runtimes.isolation_names() == ["sandbox"]
    assert [r.name for r in runtimes.actor_runtimes()] == ["durable"]


def test_importing_any_core_module_registers_them_in_a_fresh_interpreter():
    code = ("from actorium.core.worker import worker_main\n"
            "from actorium.core import runtimes\n"
            "print(runtimes.isolation_names(), [r.name for r in runtimes.actor_runtimes()])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "['sandbox'] ['durable']", out.stderr


def test_workers_forked_by_the_zygote_have_them_registered(shared_cluster):
    assert actorium.get(registered_here.remote(), timeout=60) == (["sandbox"], ["durable"])


def test_an_unregistered_isolation_is_refused_with_the_registered_ones():
    with pytest.raises(ValueError, match="isolation must be None or 'sandbox', got 'vm'"):
        registered_here.options(isolation="vm")
    with pytest.raises(ValueError, match="registered: 'sandbox'"):
        runtimes.isolation("vm")
