"""Server-Sent Events from generator methods: incremental, and cancelled on disconnect."""
from __future__ import annotations

import httpx

import actorium
from serve_fixtures import serve_cluster, http, deployed  # noqa: F401  (fixtures)
from serve_agents import Streamer


def _events(response):
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line[len("data: "):]


def test_first_event_arrives_before_the_generator_finishes(http, deployed, tmp_path):
    deployed(Streamer, name="sse-inc", route_prefix="/inc")
    flag = tmp_path / "go-on"
    with http.stream("POST", "/inc/wait_for_flag", json={"args": [str(flag)]},
                     headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r)
        # The generator is now blocked until the flag exists: this event was flushed
        # while it still runs.
        assert next(events) == '"first"'
        flag.touch()
        assert next(events) == '"second"'


def test_client_disconnect_cancels_the_generator(http, deployed):
    dep = deployed(Streamer, name="sse-cancel", route_prefix="/cancel")
    with http.stream("POST", "/cancel/forever", json={"args": [0.01]},
                     headers={"Accept": "text/event-stream"}) as r:
        events = _events(r)
        got = [next(events) for _ in range(3)]
    assert got == ["1", "2", "3"]
    # The replica runs one call at a time: count() is served only once the endless
    # generator has been cancelled.
    first = actorium.get(dep.handle.count.remote(), timeout=15)
    second = actorium.get(dep.handle.count.remote(), timeout=15)
    assert first == second >= 3


def test_generator_error_ends_the_stream_with_an_error_event(http, deployed):
    class Failing:
        def gen(self):
            yield 1
            raise KeyError("gone")
    deployed(Failing, name="sse-err", route_prefix="/sseerr")
    r = http.post("/sseerr/gen", json={}, headers={"Accept": "text/event-stream"})
    assert r.status_code == 200
    assert "data: 1\n\n" in r.text
    assert "event: error" in r.text and "KeyError" in r.text and "Traceback" not in r.text


def test_streaming_through_the_python_handle(serve_cluster, deployed):
    dep = deployed(Streamer, name="sse-py")
    gen = dep.handle.forever.remote(0.001)
    got = [actorium.get(next(gen), timeout=10) for _ in range(5)]
    actorium.cancel(gen)
    assert got == [1, 2, 3, 4, 5]
    assert isinstance(httpx, object)
