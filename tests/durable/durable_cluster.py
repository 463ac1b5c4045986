"""Helpers for durable-session tests on a multi-node Cluster: a booking agent whose
booking service is a file outside every node (it survives any crash), and checks of the
three guarantees (one booking per request, answers from the journal, an intact log)."""
from __future__ import annotations

import fcntl
import json
import os
import random
import time

from actorium import durable


def book(path: str, kind: str, ref: str, hold: str) -> str:
    """The outside world: a booking is a line in ``path``. With ``hold``, the first call
    that finds no file there creates it and then hangs, so a test can kill the node
    while a booking happened and its journal commit did not."""
    ticket = f"{kind}-{random.randrange(10**9)}"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"ref": ref, "kind": kind, "ticket": ticket}) + "\n")
    if hold and not os.path.exists(hold):
        open(hold, "w").close()
        time.sleep(120)  # killed with its node long before this returns
    return ticket


def bookings(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _think(seconds: float) -> str:
    time.sleep(seconds)
    return random.choice(["flight", "train"])


class Agent:
    """Plans (a random model stand-in, journaled), books once, checks the service when a
    crash left the booking ambiguous."""

    def __init__(self, user, path):
        self.user, self.path, self.done = user, path, 0

    def handle(self, hold="", think_time=0.0):
        ref = f"{self.user}/{self.done}"
        plan = durable.step("think", _think, think_time, idempotent=True)
        try:
            ticket = durable.step("book", book, self.path, plan, ref, hold)
        except durable.AmbiguousStep:
            found = durable.step("check", lambda: [b for b in bookings(self.path)
                                                   if b["ref"] == ref], idempotent=True)
            ticket = found[0]["ticket"] if found else durable.step(
                "book-again", book, self.path, plan, ref, "")
        self.done += 1
        return {"ref": ref, "plan": plan, "ticket": ticket}

    def node(self):
        import actorium
        return actorium.get_runtime_context().get_node_id()


def check_exactly_once(key: str, path: str, answers: list[dict]) -> None:
    """One booking per answered request, each answer the journaled plan and ticket, and
    the session's log holds each request, its steps and its result exactly once."""
    booked = [b for b in bookings(path) if b["ref"].startswith(key + "/")]
    assert sorted(b["ref"] for b in booked) == sorted(a["ref"] for a in answers), booked
    assert len({a["ref"] for a in answers}) == len(answers)
    for a in answers:
        (b,) = [b for b in booked if b["ref"] == a["ref"]]
        assert (b["kind"], b["ticket"]) == (a["plan"], a["ticket"])
    log = [e for e in durable.events(key) if e.get("method", "handle") == "handle"]
    requests = [e["request"] for e in log if e["kind"] == "request"]
    assert len(requests) == len(set(requests)) == len(answers), log
    for request in requests:  # its result once, after its steps, each step once
        mine = [e for e in log if e["request"] == request]
        assert [e["kind"] for e in mine if e["kind"] != "step"] == ["request", "result"], mine
        steps = [e["name"] for e in mine if e["kind"] == "step"]
        # A cut-off booking is checked, and made again only if it never happened.
        assert steps in (["think", "book"], ["think", "check"],
                         ["think", "check", "book-again"]), steps
