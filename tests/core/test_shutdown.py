"""Shutdown leaves nothing behind: no process, no shared-memory file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import actorium
from tests_helpers import actorium_node_pids, wait_until


def test_shutdown_leaves_no_process_and_no_shm():
    info = actorium.init(num_cpus=2)

    @actorium.remote
    def f():
        return os.getpid()

    actorium.get([f.remote() for _ in range(4)])
    actorium.put(b"x" * (1 << 20))
    session = os.path.basename(info["session_dir"])
    assert os.path.isdir(f"/dev/shm/actorium/{session}")
    actorium.shutdown()
    assert not actorium.is_initialized()
    assert wait_until(lambda: not actorium_node_pids(session))
    assert not os.path.exists(f"/dev/shm/actorium/{session}")


def test_interpreter_exit_shuts_the_cluster_down():
    code = textwrap.dedent("""
        import actorium
        info = actorium.init(num_cpus=1)
        print(info["session_dir"], flush=True)
        @actorium.remote
        def f():
            return 1
        assert actorium.get(f.remote()) == 1
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    session = os.path.basename(out.stdout.strip().splitlines()[-1])
    assert wait_until(lambda: not actorium_node_pids(session))
    assert not os.path.exists(f"/dev/shm/actorium/{session}")


def test_sigkilled_driver_does_not_leave_its_cluster_running():
    code = textwrap.dedent("""
        import actorium, time
        info = actorium.init(num_cpus=1)
        print(info["session_dir"], flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        session = os.path.basename(proc.stdout.readline().strip())
        assert actorium_node_pids(session)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not actorium_node_pids(session), timeout=15)
        assert wait_until(lambda: not os.path.exists(f"/dev/shm/actorium/{session}"), timeout=15)
    finally:
        proc.kill()
        proc.wait()
