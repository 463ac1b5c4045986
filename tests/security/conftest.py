"""A head cluster started with the real CLI, with a private ACTORIUM_TMPDIR and token
file, for attacking its TCP ports from the test process."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Head:
    """``actorium start --head`` in a private directory; stopped by ``stop()``."""

    def __init__(self, extra_env: dict | None = None):
        # Short path: ipc socket paths under it must stay below the 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="asec-", dir="/tmp")
        self.token_file = os.path.join(self.tmp, "keys", "token")
        self.env = dict(os.environ, ACTORIUM_TMPDIR=self.tmp,
                        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        **(extra_env or {}))
        for name in ("ACTORIUM_ADDRESS", "ACTORIUM_TOKEN", "ACTORIUM_TOKEN_FILE"):
            self.env.pop(name, None)
        self.session_dir = ""
        self.start_output = self.cli("start", "--head", "--port", "0", "--num-cpus", "1",
                                     "--token-file", self.token_file)
        assert self.start_output.returncode == 0, \
            self.start_output.stdout + self.start_output.stderr
        with open(os.path.join(self.tmp, "current_cluster")) as f:
            record = json.load(f)
        self.session_dir = record["session_dir"]
        self.address = record["address"]
        self.pid = record["pid"]
        with open(self.token_file) as f:
            self.token = f.read().strip()

    def cli(self, *args, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "actorium.cli", *args],
                              env=env or self.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    def driver(self, code: str, env: dict | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], env=env or self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def processes(self) -> list[psutil.Process]:
        """The head's live processes: node, gcs, zygotes, workers."""
        try:
            node = psutil.Process(self.pid)
            procs = [node] + node.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [p for p in procs if _alive(p)]

    def tcp_listeners(self) -> list[tuple[str, int, int]]:
        """(ip, port, pid) of every listening TCP socket of the cluster's processes."""
        out = []
        for proc in self.processes():
            try:
                conns = proc.net_connections(kind="tcp")
            except psutil.Error:
                continue
            out += [(c.laddr.ip, c.laddr.port, proc.pid) for c in conns
                    if c.status == psutil.CONN_LISTEN]
        return out

    def logs(self) -> str:
        text = []
        for path in glob.glob(os.path.join(self.session_dir, "logs", "*")):
            with open(path, errors="replace") as f:
                text.append(f.read())
        return "\n".join(text)

    def log_lines(self, *needles: str) -> list[str]:
        return [line for line in self.logs().splitlines() if all(n in line for n in needles)]

    def wait_log(self, *needles: str, after: int = 0, timeout: float = 15.0) -> str:
        """The first log line containing every needle, skipping the first ``after`` such
        lines (fails the test after ``timeout``: longer than the guard's LOG_WINDOW, since
        refusal lines are rate-limited per process and earlier tests share the budget)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines(*needles)
            if len(lines) > after:
                return lines[after]
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needles!r} in {self.session_dir}/logs:"
                                     f"\n{self.logs()[-3000:]}")
            time.sleep(0.05)

    def serves_a_task(self) -> bool:
        """Whether a fresh, authenticated driver process still gets a task done."""
        out = self.driver(
            "import actorium\n"
            f"actorium.init(address={self.address!r}, token={self.token!r})\n"
            "f = actorium.remote(lambda x: x * 2)\n"
            "print('RESULT', actorium.get(f.remote(21), timeout=30))\n")
        return out.returncode == 0 and "RESULT 42" in out.stdout

    def stop(self) -> None:
        pids = [p.pid for p in self.processes()]
        try:
            self.cli("stop", "--token-file", self.token_file)
        except subprocess.TimeoutExpired:
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.session_dir:
            shutil.rmtree(f"/dev/shm/actorium/{os.path.basename(self.session_dir)}",
                          ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def head():
    h = Head()
    try:
        yield h
    finally:
        h.stop()
