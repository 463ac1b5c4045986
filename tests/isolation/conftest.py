"""Fixtures for the sandbox suite.

Safety: anything that executes a sandbox (marker ``jail``) runs only under
tests/isolation/run_contained.sh, i.e. as pid 1 of a private pid namespace inside pids and
memory cgroups, so an escaped kill(-1) or fork bomb cannot reach the rest of the machine.
"""
import os
import secrets

import pytest

from isolation_helpers import sandbox_cgroups as _sandbox_cgroups
from isolation_helpers import sandbox_processes as _sandbox_processes
from isolation_helpers import wait_sandboxes_gone


def _contained() -> bool:
    return os.getpid() == 1 and os.environ.get("ACTORIUM_ISOTEST_BOOT_SECRET") is not None


def pytest_configure(config):
    config.addinivalue_line("markers", "jail: executes a sandbox (needs run_contained.sh)")


def pytest_collection_modifyitems(config, items):
    if _contained():
        return
    skip = pytest.mark.skip(reason="sandbox tests run only under tests/isolation/run_contained.sh")
    for item in items:
        if "jail" in item.keywords:
            item.add_marker(skip)


def _mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


@pytest.fixture(autouse=True)
def no_leftovers(request):
    """After every sandbox test: no sandbox process, cgroup or mount is left behind."""
    if "jail" not in request.keywords:
        yield
        return
    before = _mounts()
    yield
    wait_sandboxes_gone(5.0)  # jails of killed actors end asynchronously (bounded)
    assert _sandbox_processes() == [], "sandbox processes left behind"
    assert _sandbox_cgroups() == [], "sandbox cgroups left behind"
    assert _mounts() == before, "mounts changed in the caller's namespace"


@pytest.fixture
def secret_env(monkeypatch):
    """A secret in the caller's environment (the boot secret is set at exec time too)."""
    value = "runtime-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("ACTORIUM_TEST_SECRET", value)
    return value


@pytest.fixture
def secret_file(tmp_path):
    value = "file-secret-" + secrets.token_hex(8)
    p = tmp_path / "secret.txt"
    p.write_text(value)
    p.chmod(0o600)
    return str(p), value


@pytest.fixture
def boot_secret():
    return os.environ["ACTORIUM_ISOTEST_BOOT_SECRET"]


SECRET = "sandbox-cluster-secret-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def cluster():
    """A single-node cluster started with SECRET in the driver's environment: the node
    and everything it forks inherit it; no sandbox may see it."""
    import actorium
    old = os.environ.get("ACTORIUM_TEST_SECRET")
    os.environ["ACTORIUM_TEST_SECRET"] = SECRET
    actorium.init(num_cpus=2)
    yield SECRET
    actorium.shutdown()
    if old is None:
        os.environ.pop("ACTORIUM_TEST_SECRET", None)
    else:
        os.environ["ACTORIUM_TEST_SECRET"] = old
