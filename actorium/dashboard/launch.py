"""Starting the dashboard process (``python -m actorium.dashboard``) for a head node."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

from actorium.core.wire import auth

READY_TIMEOUT = 30.0


def start(gcs_addr: str, session_dir: str, token: auth.Token, *, port: int = 0,
          host: str = "127.0.0.1", watch_pid: int = 0, detached: bool = False):
    """Start it and wait for its READY line: (Popen, {"url", "pid"}). The token goes
    through an inherited pipe, never the command line or the environment."""
    fd = auth.token_pipe(token)
    log = open(os.path.join(session_dir, "logs", "dashboard.log"), "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "actorium.dashboard", "--gcs", gcs_addr,
             "--session-dir", session_dir, "--host", host, "--port", str(port),
             "--token-fd", str(fd), "--watch-pid", str(watch_pid)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, pass_fds=(fd,),
            start_new_session=detached)
    finally:
        os.close(fd)
        log.close()
    deadline = time.monotonic() + READY_TIMEOUT
    line = b""
    poller = select.poll()  # not select(): a driver with many actors has fds above 1024
    poller.register(proc.stdout, select.POLLIN)
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            stop(proc)
            raise TimeoutError(f"the dashboard did not start within {READY_TIMEOUT:g}s; "
                               f"see {session_dir}/logs/dashboard.log")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            proc.wait(5)
            raise RuntimeError(f"the dashboard exited with code {proc.returncode}; see "
                               f"{session_dir}/logs/dashboard.log")
        line += chunk
    proc.stdout.close()
    if not line.startswith(b"READY "):
        stop(proc)
        raise RuntimeError(f"the dashboard said {line[:200]!r} instead of READY")
    return proc, json.loads(line[6:])


def process_alive(pid: int, marker: str = "") -> bool:
    """Whether ``pid`` runs (a zombie counts as gone), with ``marker`` in its command
    line when given (a recycled pid running something else counts as gone)."""
    import psutil
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not marker or marker in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return False


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM, wait, SIGKILL: reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
