"""``actorium start --address``: a second node joins a running head through the CLI."""
from __future__ import annotations

import os

from test_cli import Env, _session_pids, _wait
from test_cli import env  # noqa: F401  (the same private-tmpdir fixture, torn down after each test)


def _joined_session(env: Env) -> str:
    joined = os.path.join(env.tmp, "joined")
    import json
    [name] = os.listdir(joined)
    with open(os.path.join(joined, name)) as f:
        record = json.load(f)
    env.sessions.add(record["session_dir"])
    return record


def test_node_started_with_address_joins_and_runs_work(env):
    cur = env.start()
    out = env.cli("start", "--address", cur["gcs_tcp"][6:], "--num-cpus", "1",
                  "--resources", '{"browser": 2}')
    assert out.returncode == 0, out.stdout + out.stderr
    record = _joined_session(env)
    assert "joined" in out.stdout
    status = env.cli("status")
    assert "Nodes: 2 alive, 0 dead" in status.stdout, status.stdout
    driver = env.driver("""
        import actorium
        actorium.init(address="auto")
        @actorium.remote(num_cpus=0, resources={"browser": 1})
        def where():
            return actorium.get_runtime_context().get_node_id()
        print("RAN-ON", actorium.get(where.remote()))
        actorium.shutdown()
    """)
    assert f"RAN-ON {record['node_id']}" in driver.stdout, driver.stdout + driver.stderr
    stop = env.cli("stop")
    assert stop.returncode == 0, stop.stderr
    assert _wait(lambda: not _session_pids(record["session_dir"]))
    assert not os.path.exists(f"/dev/shm/actorium/{os.path.basename(record['session_dir'])}")


def test_start_with_address_of_nothing_is_a_clear_error(env):
    out = env.cli("start", "--address", "127.0.0.1:1", "--num-cpus", "1")
    assert out.returncode == 1
    assert "no actorium head answered" in out.stderr


def test_start_needs_head_or_address(env):
    out = env.cli("start", "--num-cpus", "1")
    assert out.returncode == 1 and "--head" in out.stderr and "--address" in out.stderr


def test_head_restarted_with_restart_keeps_names_and_nodes(env):
    import signal
    cur = env.start()
    out = env.cli("start", "--address", cur["gcs_tcp"][6:], "--num-cpus", "1",
                  "--resources", '{"browser": 1}')
    assert out.returncode == 0, out.stdout + out.stderr
    record = _joined_session(env)
    made = env.driver("""
        import actorium
        actorium.init(address="auto", namespace="ns")
        @actorium.remote(num_cpus=0, resources={"browser": 1})
        class Keeper:
            def where(self):
                return actorium.get_runtime_context().get_node_id()
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        print("ON", actorium.get(k.where.remote()))
    """)
    assert f"ON {record['node_id']}" in made.stdout, made.stdout + made.stderr
    os.killpg(cur["pid"], signal.SIGKILL)
    assert _wait(lambda: cur["pid"] not in _session_pids(cur["session_dir"]), 10)
    restarted = env.cli("start", "--head", "--restart", "--num-cpus", "1")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    new = env.current()
    assert new["gcs_tcp"] == cur["gcs_tcp"] and new["session_dir"] == cur["session_dir"]
    found = env.driver("""
        import actorium
        actorium.init(address="auto", namespace="ns")
        print("FOUND", actorium.get(actorium.get_actor("keeper").where.remote(), timeout=30))
    """)
    assert f"FOUND {record['node_id']}" in found.stdout, found.stdout + found.stderr


def test_restart_without_a_dead_head_is_a_clear_error(env):
    out = env.cli("start", "--head", "--restart", "--num-cpus", "1")
    assert out.returncode == 1 and "--restart" in out.stderr
