"""Using the API before init() starts an embedded cluster, as Ray does, and says so once.

Each case runs in a fresh interpreter: auto-init is about a process's first call."""
from __future__ import annotations

import subprocess
import sys

import pytest

PRELUDE = "import actorium as ray\n"


def _run(body: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", PRELUDE + body], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout, out.stdout + out.stderr
    return out


def test_put_and_get_before_init_start_a_local_cluster():
    out = _run("assert not ray.is_initialized()\n"
               "assert ray.get(ray.put(41)) == 41\n"
               "assert ray.is_initialized()\nprint('OK')\n")
    assert out.stderr.count("started a local cluster") == 1, out.stderr


def test_remote_function_call_before_init_starts_a_local_cluster():
    _run("@ray.remote\ndef f(x):\n    return x + 1\n"
         "assert ray.get(f.remote(1)) == 2\nprint('OK')\n")


def test_actor_creation_before_init_starts_a_local_cluster():
    _run("@ray.remote\nclass A:\n    def ping(self):\n        return 'pong'\n"
         "a = A.remote()\nassert ray.get(a.ping.remote()) == 'pong'\nprint('OK')\n")


def test_wait_before_init_starts_a_local_cluster():
    _run("ref = ray.put(1)\n"
         "ready, rest = ray.wait([ref], timeout=30)\nassert ready == [ref]\nprint('OK')\n")


def test_get_actor_before_init_starts_a_cluster_then_raises_value_error():
    _run("try:\n    ray.get_actor('nobody')\nexcept ValueError:\n    print('OK')\n"
         "assert ray.is_initialized()\n")


def test_init_after_auto_init_needs_ignore_reinit_error():
    _run("ray.put(1)\n"
         "try:\n    ray.init()\nexcept RuntimeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
         "ray.init(ignore_reinit_error=True)\nprint('OK')\n")


@pytest.mark.parametrize("configured", [False, True])
def test_auto_init_logs_one_line(configured):
    setup = "import logging\nlogging.basicConfig(level=logging.INFO)\n" if configured else ""
    out = _run(setup + "ray.put(1)\nray.put(2)\nprint('OK')\n")
    assert out.stderr.count("actorium.init()") == 1, out.stderr
