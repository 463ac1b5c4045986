"""The ``actorium`` CLI against real, detached cluster processes.

Every test runs the CLI (and any driver) as a subprocess with its own ACTORIUM_TMPDIR,
so no test ever sees or touches a user's real ``current_cluster``; every cluster a test
starts is stopped in a fixture, and anything left of it is killed by pid afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _session_pids(session_dir: str) -> list[int]:
    """Pids of live node processes (node, gcs, zygote, workers) of one session."""
    pids = []
    for p in psutil.process_iter(["cmdline", "pid", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(p.info["cmdline"] or [])
        except psutil.Error:
            continue
        if "actorium.raylet.node" in cmd and session_dir in cmd:
            pids.append(p.pid)
    return pids


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Env:
    """A private ACTORIUM_TMPDIR plus helpers to run the CLI and drivers in it."""

    def __init__(self):
        # Short path: ipc socket paths under it must stay below the 107-byte limit.
        self.tmp = tempfile.mkdtemp(prefix="acli-", dir="/tmp")
        # A private token file: never the user's ~/.actorium/token.
        self.token_file = os.path.join(self.tmp, "token")
        self.env = dict(os.environ, ACTORIUM_TMPDIR=self.tmp, ACTORIUM_TOKEN_FILE=self.token_file,
                        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.env.pop("ACTORIUM_ADDRESS", None)
        self.env.pop("ACTORIUM_TOKEN", None)
        self.sessions: set[str] = set()

    @property
    def current_path(self) -> str:
        return os.path.join(self.tmp, "current_cluster")

    def current(self) -> dict | None:
        try:
            with open(self.current_path) as f:
                return json.load(f)
        except OSError:
            return None

    def cli(self, *args, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "actorium.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        cur = self.current()
        if cur and cur.get("session_dir"):
            self.sessions.add(cur["session_dir"])
        return proc

    def driver(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=self.env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, *extra) -> dict:
        out = self.cli("start", "--head", "--port", "0", "--num-cpus", "2", *extra)
        assert out.returncode == 0, out.stdout + out.stderr
        cur = self.current()
        assert cur is not None, "start did not write current_cluster"
        return cur

    def cleanup(self) -> None:
        """Stop whatever this test started, even if the test failed half-way."""
        if self.current() is not None:
            try:
                self.cli("stop", timeout=60)
            except subprocess.TimeoutExpired:
                pass
        for session in self.sessions:
            for pid in _session_pids(session):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            shutil.rmtree(f"/dev/shm/actorium/{os.path.basename(session)}", ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def env():
    e = Env()
    try:
        yield e
    finally:
        e.cleanup()


def test_start_head_keeps_node_running_after_cli_exits_and_records_it(env):
    cur = env.start()
    for key in ("gcs_tcp", "session_dir", "pid", "node_id"):
        assert cur.get(key), f"current_cluster lacks {key}: {cur}"
    assert cur["session_dir"].startswith(env.tmp)
    assert psutil.pid_exists(cur["pid"])
    assert cur["pid"] in _session_pids(cur["session_dir"])
    # Detached: its own session, not the CLI's, and still alive after the CLI exited.
    assert os.getsid(cur["pid"]) == cur["pid"]
    time.sleep(0.5)
    assert cur["pid"] in _session_pids(cur["session_dir"])


def test_start_head_prints_address_and_how_to_connect_and_stop(env):
    out = env.cli("start", "--head", "--port", "0", "--num-cpus", "1")
    assert out.returncode == 0, out.stderr
    address = env.current()["gcs_tcp"][len("tcp://"):]
    assert address in out.stdout
    assert 'address="auto"' in out.stdout
    assert f'address="{address}"' in out.stdout
    assert "actorium stop" in out.stdout
    assert f"cluster token file: {env.token_file}" in out.stdout


def test_drivers_share_a_named_detached_actor_across_processes(env):
    env.start()
    first = env.driver("""
        import actorium
        actorium.init(address="auto", namespace="shared")
        @actorium.remote
        def square(x):
            return x * x
        assert actorium.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]
        @actorium.remote
        class Counter:
            def __init__(self):
                self.n = 0
            def incr(self):
                self.n += 1
                return self.n
        c = Counter.options(name="counter", lifetime="detached").remote()
        assert actorium.get(c.incr.remote()) == 1
        print("FIRST-OK")
    """)
    assert first.returncode == 0 and "FIRST-OK" in first.stdout, first.stdout + first.stderr
    second = env.driver("""
        import actorium
        actorium.init(address="auto", namespace="shared")
        c = actorium.get_actor("counter", namespace="shared")
        print("VALUE", actorium.get(c.incr.remote()))
    """)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "VALUE 2" in second.stdout


def test_driver_connects_with_explicit_host_port(env):
    cur = env.start()
    address = cur["gcs_tcp"][len("tcp://"):]
    out = env.driver(f"""
        import actorium
        actorium.init(address="{address}")
        print("GOT", actorium.get(actorium.put(41)) + 1)
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GOT 42" in out.stdout


def test_status_shows_one_node_resources_and_the_actor(env):
    cur = env.start()
    made = env.driver("""
        import actorium
        actorium.init(address="auto", namespace="st")
        @actorium.remote
        class Keeper:
            def ping(self):
                return "pong"
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert actorium.get(k.ping.remote()) == "pong"
    """)
    assert made.returncode == 0, made.stdout + made.stderr
    out = env.cli("status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Nodes: 1 alive" in out.stdout
    assert cur["node_id"] in out.stdout
    assert "CPU" in out.stdout and "/2" in out.stdout
    assert "Object store:" in out.stdout
    assert "Actors: 1 (ALIVE: 1)" in out.stdout
    assert "keeper" in out.stdout and "Keeper" in out.stdout


def test_status_with_explicit_address(env):
    cur = env.start()
    out = env.cli("status", "--address", cur["gcs_tcp"][len("tcp://"):])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Nodes: 1 alive" in out.stdout


def test_list_nodes_and_actors_print_tables(env):
    cur = env.start()
    nodes = env.cli("list", "nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert "NODE_ID" in nodes.stdout and cur["node_id"] in nodes.stdout
    actors = env.cli("list", "actors")
    assert actors.returncode == 0, actors.stderr
    assert "ACTOR_ID" in actors.stdout


def test_list_objects_shows_what_the_node_stores(env):
    env.start()
    made = env.driver("""
        import actorium, numpy
        actorium.init(address="auto", namespace="objects")
        @actorium.remote
        class Keeper:
            def __init__(self):
                self.ref = actorium.put(numpy.ones(1 << 18))  # 2 MiB: in the store
            def ok(self):
                return actorium.get(self.ref).sum() == (1 << 18)
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert actorium.get(k.ok.remote())
    """)
    assert made.returncode == 0, made.stdout + made.stderr
    out = env.cli("list", "objects")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["OBJECT_ID", "NODE_ID", "SIZE"]
    assert any("2.00 MiB" in line for line in lines[1:]), out.stdout


def test_stop_leaves_no_node_process_and_no_shm_dir(env):
    cur = env.start()
    session = cur["session_dir"]
    shm = f"/dev/shm/actorium/{os.path.basename(session)}"
    made = env.driver("""
        import actorium, numpy
        actorium.init(address="auto", namespace="stop")
        @actorium.remote
        class Holder:
            def ok(self):
                return True
        h = Holder.options(name="holder", lifetime="detached").remote()
        assert actorium.get(h.ok.remote())
        ref = actorium.put(numpy.zeros(1 << 20))
        assert actorium.get(ref).sum() == 0
    """)
    assert made.returncode == 0, made.stdout + made.stderr
    assert os.path.isdir(shm)
    assert len(_session_pids(session)) >= 3  # node, gcs, zygote (+ workers)
    out = env.cli("stop")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Stopped" in out.stdout
    assert _wait(lambda: not _session_pids(session), 5), _session_pids(session)
    assert not os.path.exists(shm)
    assert not os.path.exists(env.current_path)
    assert not os.path.exists(os.path.join(session, "sockets"))


def test_stop_with_nothing_running_is_a_successful_no_op(env):
    out = env.cli("stop")
    assert out.returncode == 0
    assert "No running actorium cluster" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_stop_twice_is_idempotent(env):
    env.start()
    assert env.cli("stop").returncode == 0
    again = env.cli("stop")
    assert again.returncode == 0
    assert "No running actorium cluster" in again.stdout


def test_status_with_nothing_running_exits_1_with_a_message(env):
    t0 = time.monotonic()
    out = env.cli("status")
    assert out.returncode == 1
    assert "no running actorium cluster" in out.stderr
    assert "actorium start --head" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 10


def test_status_of_unreachable_address_exits_1_within_seconds(env):
    t0 = time.monotonic()
    out = env.cli("status", "--address", "127.0.0.1:1")
    assert out.returncode == 1
    assert "127.0.0.1:1" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 10


def test_status_after_the_node_was_killed_exits_1_and_stop_cleans_up(env):
    cur = env.start()
    session = cur["session_dir"]
    os.killpg(cur["pid"], signal.SIGKILL)
    assert _wait(lambda: not _session_pids(session), 5)
    out = env.cli("status")
    assert out.returncode == 1
    assert "not running" in out.stderr and "actorium stop" in out.stderr
    stop = env.cli("stop")
    assert stop.returncode == 0
    assert not os.path.exists(env.current_path)
    assert not os.path.exists(f"/dev/shm/actorium/{os.path.basename(session)}")


def test_start_head_twice_refuses_and_keeps_the_first_cluster(env):
    cur = env.start()
    out = env.cli("start", "--head", "--port", "0")
    assert out.returncode == 1
    assert "already running" in out.stderr and "actorium stop" in out.stderr
    assert "Traceback" not in out.stderr
    assert env.current() == cur
    assert cur["pid"] in _session_pids(cur["session_dir"])
    # Only one node process tree exists in this tmpdir.
    sessions = [d for d in os.listdir(env.tmp) if d.startswith("s-")]
    assert sessions == [os.path.basename(cur["session_dir"])]


def test_start_after_a_crashed_cluster_replaces_the_stale_record(env):
    old = env.start()
    os.killpg(old["pid"], signal.SIGKILL)
    assert _wait(lambda: not _session_pids(old["session_dir"]), 5)
    new = env.start()
    assert new["session_dir"] != old["session_dir"]


def test_start_with_bad_resources_json_is_one_line_error(env):
    out = env.cli("start", "--head", "--port", "0", "--resources", "{not json")
    assert out.returncode == 1
    assert "--resources" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert env.current() is None


def test_start_on_a_busy_port_is_a_clear_error(env):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = env.cli("start", "--head", "--port", str(port))
    assert out.returncode == 1
    assert "already in use" in out.stderr and str(port) in out.stderr
    assert env.current() is None


def test_start_honours_custom_resources(env):
    env.start("--resources", '{"TPU": 3}', "--num-gpus", "1")
    out = env.cli("status")
    assert out.returncode == 0, out.stderr
    assert "TPU: 0/3" in out.stdout
    assert "GPU: 0/1" in out.stdout


def test_init_with_nothing_listening_raises_connection_error_quickly(env):
    out = env.driver("""
        import time, actorium
        t0 = time.monotonic()
        try:
            actorium.init(address="127.0.0.1:1")
        except ConnectionError as exc:
            print("CONNECTION-ERROR", round(time.monotonic() - t0, 2))
        else:
            print("CONNECTED?!")
    """)
    assert "CONNECTION-ERROR" in out.stdout, out.stdout + out.stderr
    elapsed = float(out.stdout.split("CONNECTION-ERROR", 1)[1].split()[0])
    assert elapsed < 6.5


def test_init_auto_with_no_cluster_raises_connection_error(env):
    out = env.driver("""
        import actorium
        try:
            actorium.init(address="auto")
        except ConnectionError as exc:
            print("CONNECTION-ERROR", exc)
    """)
    assert "CONNECTION-ERROR" in out.stdout, out.stdout + out.stderr
    assert "actorium start --head" in out.stdout
