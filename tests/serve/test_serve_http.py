"""HTTP ingress: JSON calls and every error status, over real loopback HTTP."""
from __future__ import annotations

import glob
import os

import httpx

import actorium
from serve_fixtures import serve_cluster, http, deployed  # noqa: F401  (fixtures)
from serve_agents import Echo, Slow
from tests_helpers import wait_until


def test_post_calls_the_method_and_returns_its_json_result(http, deployed):
    deployed(Echo, name="h-echo", route_prefix="/echo")
    r = http.post("/echo/echo", json={"args": ["hi"]})
    assert r.status_code == 200
    assert r.json()["value"] == "hi"
    r = http.post("/echo/echo", json={"kwargs": {"value": [1, {"a": None}]}})
    assert r.json()["value"] == [1, {"a": None}]


def test_empty_body_calls_without_arguments(http, deployed):
    deployed(Echo, name="h-empty", route_prefix="/empty")
    r = http.post("/empty/pid", content=b"")
    assert r.status_code == 200 and isinstance(r.json(), int)


def test_generator_without_event_stream_returns_all_items_as_a_list(http, deployed):
    deployed(Echo, name="h-gen", route_prefix="/gen")
    assert http.post("/gen/tokens", json={"args": ["a b c"]}).json() == ["a", "b", "c"]


def test_missing_or_wrong_token_is_401(http, deployed):
    deployed(Echo, name="h-auth", route_prefix="/auth")
    url = str(http.base_url).rstrip("/")
    assert httpx.post(url + "/auth/pid", json={}).status_code == 401
    r = httpx.post(url + "/auth/pid", json={}, headers={"Authorization": "Bearer " + "x" * 64})
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
    r = httpx.post(url + "/auth/pid", json={},
                   headers={"Authorization": "Basic " + actorium.cluster_token()})
    assert r.status_code == 401
    # An unknown route does not tell an unauthenticated caller whether it exists.
    assert httpx.post(url + "/nowhere/x", json={}).status_code == 401


def test_api_keys_open_their_deployment_only(http, deployed):
    key = "k" * 8 + "0123456789abcdef"
    deployed(Echo, name="h-keyed", route_prefix="/keyed", api_keys=[key])
    deployed(Echo, name="h-other", route_prefix="/other")
    url = str(http.base_url).rstrip("/")
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.post(url + "/keyed/pid", json={}, headers=bearer).status_code == 200
    assert httpx.post(url + "/other/pid", json={}, headers=bearer).status_code == 401
    assert http.post("/keyed/pid", json={}).status_code == 200  # the cluster token too


def test_unknown_route_or_method_is_404(http, deployed):
    deployed(Echo, name="h-404", route_prefix="/known")
    assert http.post("/unknown/echo", json={}).status_code == 404
    r = http.post("/known/nope", json={})
    assert r.status_code == 404 and "nope" in r.json()["message"]
    assert http.post("/known/_private", json={}).status_code == 404
    assert http.post("/known", json={}).status_code == 404


def test_bad_json_or_arguments_is_400_with_a_message(http, deployed):
    deployed(Echo, name="h-400", route_prefix="/bad")
    r = http.post("/bad/echo", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = http.post("/bad/echo", json=[1, 2])
    assert r.status_code == 400 and "args" in r.json()["message"]
    r = http.post("/bad/echo", json={"args": "x"})
    assert r.status_code == 400
    r = http.post("/bad/echo", json={"args": [1, 2, 3]})
    assert r.status_code == 400 and "echo()" in r.json()["message"]
    r = http.post("/bad/echo", json={"kwargs": {"nope": 1}})
    assert r.status_code == 400


def test_exception_in_the_method_is_500_without_traceback(http, deployed):
    deployed(Echo, name="h-500", route_prefix="/err")
    r = http.post("/err/boom", json={"args": ["it broke"]})
    assert r.status_code == 500
    assert r.json() == {"error": "ValueError", "message": "it broke"}
    assert "Traceback" not in r.text and ".py" not in r.text
    r = http.post("/err/unserializable", json={})
    assert r.status_code == 500 and r.json()["error"] == "TypeError"


def test_queue_full_is_429_with_retry_after(http, deployed, tmp_path):
    deployed(Slow, name="h-429", route_prefix="/slow", max_ongoing_requests=1,
             max_queued_requests=1)
    flag = str(tmp_path / "release")
    url = str(http.base_url).rstrip("/")
    headers = dict(http.headers)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.post, url + "/slow/hold", json={"args": [flag]},
                            headers=headers, timeout=30)
        assert wait_until(lambda: actorium.deployments()["h-429"]["ongoing"] == 1, 10)
        second = pool.submit(httpx.post, url + "/slow/hold", json={"args": [flag]},
                             headers=headers, timeout=30)
        assert wait_until(lambda: actorium.deployments()["h-429"]["queued"] == 1, 10)
        r = http.post("/slow/hold", json={"args": [flag]})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        open(flag, "w").close()
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_body_over_the_cap_is_413(http, deployed):
    deployed(Echo, name="h-413", route_prefix="/big")
    big = b'{"args": ["' + b"x" * (10 * 1024 * 1024) + b'"]}'
    assert http.post("/big/echo", content=big).status_code == 413

    def chunks():  # no Content-Length: the cap applies while reading
        for _ in range(11):
            yield b"x" * (1024 * 1024)
    assert http.post("/big/echo", content=chunks()).status_code == 413
    assert http.post("/big/echo", json={"args": ["small"]}).status_code == 200


def test_only_post_is_served(http, deployed):
    deployed(Echo, name="h-405", route_prefix="/m")
    assert http.get("/m/pid").status_code == 405


def test_tokens_never_reach_the_logs(serve_cluster, http, deployed):
    key = "secret-api-key-" + "z" * 20
    deployed(Echo, name="h-logs", route_prefix="/logs", api_keys=[key])
    url = str(http.base_url).rstrip("/")
    wrong = "wrong-token-" + "q" * 40
    for token in (actorium.cluster_token(), key, wrong):
        httpx.post(url + "/logs/pid", json={}, headers={"Authorization": f"Bearer {token}"})
        httpx.post(url + "/logs/nope", json={}, headers={"Authorization": f"Bearer {token}"})
    logs = glob.glob(os.path.join(serve_cluster["session_dir"], "logs", "*"))
    assert logs
    for path in logs:
        text = open(path, errors="replace").read()
        for token in (actorium.cluster_token(), key, wrong):
            assert token not in text, path
