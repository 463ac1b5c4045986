"""Deployments on a long-running cluster (`actorium start --head --http-port`), the CLI
views of them, and that nothing is left running after shutdown."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "cli"))
from test_cli import Env, _session_pids, _wait  # noqa: E402
from test_cli import env  # noqa: E402,F401  (private ACTORIUM_TMPDIR, stopped after each test)

DEPLOY = """
    import actorium, os
    actorium.init(address="auto")
    class Svc:
        def __init__(self, greeting):
            self.greeting = greeting
        def hello(self, name):
            return f"{self.greeting}, {name}"
    actorium.deploy(Svc, "hej", name="svc", route_prefix="/svc", min_replicas=1)
    print("DEPLOYED")
"""


def _refused(url: str) -> bool:
    """Whether nothing listens at ``url`` any more."""
    try:
        httpx.post(url, json={}, timeout=2)
    except httpx.TransportError:
        return True
    return False


def _token(env: Env) -> str:
    return open(env.token_file).read().strip()


def test_deployment_outlives_its_driver_and_shows_in_the_cli(env):
    out = env.cli("start", "--head", "--port", "0", "--num-cpus", "2", "--http-port", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    url = re.search(r"HTTP ingress: (http://\S+)", out.stdout).group(1)
    made = env.driver(DEPLOY)
    assert made.returncode == 0 and "DEPLOYED" in made.stdout, made.stdout + made.stderr
    # The driver has exited; the deployment (detached controller and replicas) serves on.
    r = httpx.post(url + "/svc/hello", json={"args": ["du"]},
                   headers={"Authorization": f"Bearer {_token(env)}"}, timeout=30)
    assert r.status_code == 200 and r.json() == "hej, du"
    assert _wait(lambda: "svc" in env.cli("list", "deployments").stdout, 10)
    listing = env.cli("list", "deployments").stdout
    assert "NAME" in listing and "/svc" in listing and "Svc" in listing
    status = env.cli("status")
    assert status.returncode == 0 and "Deployments: 1" in status.stdout, status.stdout
    again = env.driver("""
        import actorium
        actorium.init(address="auto")
        h = actorium.get_deployment_handle("svc")
        print("REPLY", actorium.get(h.hello.remote("igen"), timeout=30))
    """)
    assert "REPLY hej, igen" in again.stdout, again.stdout + again.stderr
    session = env.current()["session_dir"]
    assert env.cli("stop").returncode == 0
    assert _wait(lambda: not _session_pids(session), 10)
    assert _refused(url + "/svc/hello")


def test_http_port_needs_head(env):
    out = env.cli("start", "--address", "127.0.0.1:1", "--http-port", "0")
    assert out.returncode == 1 and "--http-port" in out.stderr


def test_embedded_cluster_leaves_nothing_running_after_shutdown(tmp_path):
    code = textwrap.dedent("""
        import actorium
        info = actorium.init(num_cpus=2)
        class Svc:
            def hello(self):
                return "hi"
            def tokens(self):
                yield from range(1000000)
        dep = actorium.deploy(Svc, name="svc", route_prefix="/svc", min_replicas=2,
                              max_replicas=3)
        assert actorium.get(dep.handle.hello.remote(), timeout=30) == "hi"
        gen = dep.handle.tokens.remote()   # left running on purpose
        print("URL", actorium.http_url())
        print("SESSION", info["session_dir"])
        actorium.shutdown()
        print("DONE")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0 and "DONE" in out.stdout, out.stdout + out.stderr
    url = re.search(r"URL (\S+)", out.stdout).group(1)
    session = re.search(r"SESSION (\S+)", out.stdout).group(1)
    assert _wait(lambda: not _session_pids(session), 10), _session_pids(session)
    assert not os.path.exists(f"/dev/shm/actorium/{os.path.basename(session)}")
    assert _refused(url + "/svc/hello")
