"""The dashboard through its public face: real HTTP, a real cluster, real Chromium."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import actorium
from actorium.core.wire import auth

from browser import chromium, dump_dom

ENDPOINTS = ["/", "/app.js", "/style.css", "/metrics", "/api/snapshot",
             "/api/logs?node=x&file=*", "/api/events?key=k"]


def _get(url: str, token: str | None = None, cookie: str | None = None):
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = cookie
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def _wait_for(fn, timeout: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def dash():
    actorium.init(num_cpus=2)
    try:
        yield actorium.dashboard_url(), auth.process_token().value
    finally:
        actorium.shutdown()


def test_dashboard_url_is_public_api():
    assert "dashboard_url" in actorium.__all__


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_refuses_requests_without_the_token(dash, path):
    url, token = dash
    assert _get(url + path)[0] == 401
    assert _get(url + path, token="x" * len(token))[0] == 401
    assert _get(url + path, cookie="actorium_dashboard=" + "0" * 64)[0] == 401
    sep = "&" if "?" in path else "?"
    assert _get(url + path + f"{sep}token=wrong-token-0123456789")[0] == 401
    assert _get(url + path, token=token)[0] != 401


def test_a_token_url_sets_a_cookie_that_opens_the_page(dash):
    url, token = dash

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{url}/?token={token}", timeout=10)
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 303
        assert exc.headers["Location"] == "/"
        cookie = exc.headers["Set-Cookie"].split(";")[0]
    assert token not in cookie  # the cookie is derived from the token, not the token
    status, body, _ = _get(url + "/api/snapshot", cookie=cookie)
    assert status == 200 and json.loads(body)["nodes"]


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_follow_the_work(dash):
    url, token = dash

    @actorium.remote
    def metered(x):
        return x

    def submitted():  # a function's name is its __qualname__, as in Ray
        s = _samples(_get(url + "/metrics", token=token)[1].decode())
        return sum(v for (name, labels), v in s.items()
                   if name == "actorium_tasks_finished_total"
                   and dict(labels)["name"].endswith("metered"))

    before = submitted()
    actorium.get([metered.remote(i) for i in range(25)])
    _wait_for(lambda: submitted() >= before + 25, what="25 more finished 'metered' tasks")
    s = _samples(_get(url + "/metrics", token=token)[1].decode())
    names = {name for name, _ in s}
    for expected in ("actorium_tasks_submitted_total", "actorium_actors",
                     "actorium_node_cpu_percent", "actorium_node_memory_bytes",
                     "actorium_object_store_bytes", "actorium_lease_queue_length",
                     "actorium_sandbox_starts_total", "actorium_journal_step_seconds_bucket"):
        assert expected in names, expected
    assert all(name.startswith("actorium_") for name in names)
    for _name, labels in s:  # bounded labels: no ids
        for key, value in labels:
            assert key in ("name", "state", "node", "kind", "host", "head", "status", "le")
            assert len(value) < 100


def test_chromium_shows_a_node_a_named_actor_and_a_failed_tasks_traceback(dash):
    if chromium() is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does)")
    url, token = dash

    @actorium.remote
    class Concierge:
        def ping(self):
            return "pong"

    @actorium.remote
    def book_the_impossible_flight():
        raise RuntimeError("no seats left on flight AX-1234")

    concierge = Concierge.options(name="concierge-on-the-dashboard").remote()
    assert actorium.get(concierge.ping.remote()) == "pong"
    with pytest.raises(RuntimeError):
        actorium.get(book_the_impossible_flight.remote())
    node_id = actorium.get_runtime_context().get_node_id()
    _wait_for(lambda: b"AX-1234" in _get(url + "/api/snapshot", token=token)[1],
              what="the failure in the snapshot")
    dom = dump_dom(f"{url}/?token={token}")
    assert node_id in dom
    assert "concierge-on-the-dashboard" in dom and "Concierge" in dom
    assert "book_the_impossible_flight" in dom
    assert "RuntimeError: no seats left on flight AX-1234" in dom
    assert "Traceback (most recent call last)" in dom


def test_chromium_shows_a_sessions_events(dash):
    if chromium() is None:
        pytest.fail("chromium is not installed")
    url, token = dash
    actorium.durable.emit("dash-session-7", {"said": "book me a train to Lyon"})
    actorium.durable.emit("dash-session-7", {"answered": "train TGV-6601 booked"})
    _wait_for(lambda: b"dash-session-7" in _get(url + "/api/snapshot", token=token)[1],
              what="the session in the snapshot")
    dom = dump_dom(f"{url}/?token={token}#session=dash-session-7")
    assert "book me a train to Lyon" in dom and "TGV-6601" in dom
