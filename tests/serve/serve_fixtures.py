"""Fixtures of the serve tests, imported by each test module (a conftest.py here would
replace the ``conftest`` module other suites import names from): one embedded cluster
(with its HTTP ingress on a free port) per module; each test deploys under its own
name and deletes what it deployed."""
from __future__ import annotations

import cloudpickle
import httpx
import pytest

import actorium

import serve_agents

# Replicas cannot import this test directory: ship the classes by value.
cloudpickle.register_pickle_by_value(serve_agents)


@pytest.fixture(scope="module")
def serve_cluster():
    info = actorium.init(num_cpus=2)
    try:
        yield info
    finally:
        actorium.shutdown()


@pytest.fixture(scope="module")
def http(serve_cluster):
    """An httpx client for the ingress, authorized with the cluster token."""
    url = actorium.http_url()
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {actorium.cluster_token()}"}) as c:
        yield c


@pytest.fixture
def deployed(serve_cluster):
    """deploy(...) that deletes the deployment after the test."""
    names = []

    def deploy(cls, *args, **kwargs):
        dep = actorium.deploy(cls, *args, **kwargs)
        names.append(dep.name)
        return dep
    yield deploy
    for name in names:
        try:
            actorium.delete_deployment(name)
        except ValueError:
            pass
