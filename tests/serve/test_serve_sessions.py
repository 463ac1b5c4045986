"""Session affinity: a session stays on its replica while it lives, across scale-up;
with durable=True its state survives its replica being removed."""
from __future__ import annotations

import os
import time

import actorium
from serve_fixtures import serve_cluster, http, deployed  # noqa: F401  (fixtures)
from serve_agents import Chat, Echo
from tests_helpers import wait_until


def _status(name):
    return actorium.deployments()[name]


def test_session_stays_on_its_replica_across_scale_up(http, deployed):
    dep = deployed(Echo, name="a-sticky", route_prefix="/sticky", min_replicas=1,
                   max_replicas=3, target_ongoing_requests=1, idle_timeout_s=30)
    u1 = dep.handle.options(session="u1")
    home = actorium.get(u1.pid.remote(), timeout=10)
    seen = set()
    deadline = time.monotonic() + 20
    while _status("a-sticky")["replicas"] < 3 and time.monotonic() < deadline:
        load = [dep.handle.work.remote(0.05) for _ in range(12)]
        # Session calls interleaved with the load that makes the deployment grow.
        seen.update(actorium.get([u1.pid.remote() for _ in range(3)], timeout=30))
        actorium.get(load, timeout=30)
    assert _status("a-sticky")["replicas"] == 3
    seen.update(actorium.get([u1.pid.remote() for _ in range(10)], timeout=30))
    assert seen == {home}
    # The HTTP ingress routes the same session to the same replica.
    for _ in range(5):
        r = http.post("/sticky/pid", json={}, headers={"X-Session-Id": "u1"})
        assert r.status_code == 200 and r.json() == home
    # Other sessions spread over the replicas.
    homes = {actorium.get(dep.handle.options(session=f"s{i}").pid.remote(), timeout=10)
             for i in range(30)}
    assert len(homes) > 1


def test_durable_session_state_survives_its_replica_being_removed(http, deployed):
    deployed(Chat, "stand-in", name="a-durable", route_prefix="/durable", durable=True,
             min_replicas=0, idle_timeout_s=1.0)
    headers = {"X-Session-Id": "alice"}
    first = [http.post("/durable/chat", json={"args": [t]}, headers=headers).json()
             for t in ("hi", "book a flight", "to Oslo")]
    assert [r["turn"] for r in first] == [1, 2, 3]
    assert len({r["pid"] for r in first}) == 1
    assert _status("a-durable")["sessions"] == 1
    # Idle past idle_timeout_s: the session's actor drains and stops.
    assert wait_until(lambda: _status("a-durable")["sessions"] == 0, timeout=15)
    r = http.post("/durable/chat", json={"args": ["still there?"]}, headers=headers).json()
    assert r["turn"] == 4
    assert r["turns"] == ["hi", "book a flight", "to Oslo", "still there?"]
    assert r["pid"] != first[0]["pid"]
    # Another session has its own state.
    other = http.post("/durable/chat", json={"args": ["x"]},
                      headers={"X-Session-Id": "bob"}).json()
    assert other["turn"] == 1


def test_durable_sessions_from_python_and_http_share_the_session(http, deployed):
    dep = deployed(Chat, "stand-in", name="a-shared", route_prefix="/shared", durable=True,
                   min_replicas=0, idle_timeout_s=30)
    h = dep.handle.options(session="carol")
    assert actorium.get(h.chat.remote("one"), timeout=30)["turn"] == 1
    r = http.post("/shared/chat", json={"args": ["two"]}, headers={"X-Session-Id": "carol"})
    assert r.json()["turn"] == 2
    assert actorium.get(h.chat.remote("three"), timeout=30)["turn"] == 3


def test_durable_session_actor_killed_restarts_from_its_checkpoint(serve_cluster, deployed):
    dep = deployed(Chat, "stand-in", name="a-crash", durable=True, min_replicas=0,
                   idle_timeout_s=30)
    h = dep.handle.options(session="dave")
    pid = actorium.get(h.chat.remote("a"), timeout=30)["pid"]
    actorium.get(h.chat.remote("b"), timeout=30)
    os.kill(pid, 9)
    r = actorium.get(h.chat.remote("c"), timeout=30)
    assert r["turns"] == ["a", "b", "c"] and r["pid"] != pid
