"""An agent service: a chat agent deployed behind HTTP, scaling with load and to zero.

    python examples/chat_service.py            # needs the serve extra: pip install actorium[serve]

It deploys ``ChatAgent`` with ``min_replicas=0``, then talks to it the way a web client
would — JSON calls with a session id, a token stream as Server-Sent Events — prints what
the deployment does (cold start, a burst that adds replicas, scale back to zero), and
finally calls it from Python through the same router. Standard library HTTP only.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import time
import urllib.request

import actorium


class ChatAgent:
    """A stand-in for an LLM agent: keeps the conversation, streams a reply word by word."""

    def __init__(self, model: str):
        self.model, self.turns = model, []

    def chat(self, text: str) -> dict:
        self.turns.append(text)
        time.sleep(0.02)  # the "model call"
        return {"turn": len(self.turns), "reply": f"[{self.model}] you said {text!r}",
                "pid": os.getpid()}

    def stream(self, text: str):
        for word in f"thinking about: {text}".split():
            time.sleep(0.05)
            yield word


def post(url: str, token: str, body: dict, session: str | None = None,
         stream: bool = False):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if session:
        headers["X-Session-Id"] = session
    if stream:
        headers["Accept"] = "text/event-stream"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    return urllib.request.urlopen(req, timeout=30)


def main() -> None:
    actorium.init()
    dep = actorium.deploy(ChatAgent, "stand-in-model", name="chat", route_prefix="/chat",
                          min_replicas=0, max_replicas=4, target_ongoing_requests=1,
                          idle_timeout_s=2, max_queued_requests=100)
    url, token = actorium.http_url(), actorium.cluster_token()
    print(f"serving at {url}/chat  replicas now: {dep.status()['replicas']}")

    t0 = time.perf_counter()
    reply = json.load(post(f"{url}/chat/chat", token, {"args": ["hello"]}, session="u1"))
    print(f"cold start: first reply in {1e3 * (time.perf_counter() - t0):.0f} ms: {reply}")
    reply = json.load(post(f"{url}/chat/chat", token, {"args": ["again"]}, session="u1"))
    print(f"same session, same replica: turn {reply['turn']} from pid {reply['pid']}")

    print("streaming:", end=" ", flush=True)
    with post(f"{url}/chat/stream", token, {"args": ["the weather"]}, stream=True) as r:
        for line in r:
            if line.startswith(b"data: "):
                print(json.loads(line[6:]), end=" ", flush=True)
    print()

    # A burst: 8 at a time from 120 users. New sessions spread over the replicas the
    # burst adds (a session stays on the replica it started on while that one runs).
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        pids = set(pool.map(lambda i: json.load(post(
            f"{url}/chat/chat", token, {"args": [f"q{i}"]}, session=f"user{i}"))["pid"],
            range(120)))
    print(f"burst served by {len(pids)} replica(s); status: {actorium.deployments()['chat']}")

    deadline = time.monotonic() + 30
    while dep.status()["replicas"] and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"idle for idle_timeout_s: replicas now {dep.status()['replicas']}")

    # Python callers use the same router (and the same session affinity).
    ref = dep.handle.options(session="u1").chat.remote("from python")
    print("from Python:", actorium.get(ref, timeout=30)["reply"])
    actorium.delete_deployment("chat")
    actorium.shutdown()


if __name__ == "__main__":
    main()
