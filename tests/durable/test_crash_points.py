"""kill -9 of a session's process between two steps, during the booking step, and right
after a step commits: exactly one booking per request, the answer agrees with the
journaled plan, and the session's log has every event exactly once."""
from __future__ import annotations

import json
import os
import random
import signal
import sys

import cloudpickle
import pytest

import actorium
from actorium import durable

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def crash_if(point: str, here: str, marker: str) -> None:
    if point == here and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def book(path: str, kind: str, ref: str, point: str, marker: str) -> str:
    ticket = f"{kind}-{random.randrange(10**6)}"
    with open(path, "a") as f:
        f.write(json.dumps({"ref": ref, "kind": kind, "ticket": ticket}) + "\n")
    crash_if(point, "during", marker)  # the booking happened; its commit did not
    return ticket


def bookings(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


class Agent:
    def __init__(self, user, path):
        self.user, self.path, self.done = user, path, 0

    def handle(self, point, marker):
        ref = f"{self.user}/{self.done}"
        plan = durable.step("think", random.choice, ["flight", "train"], idempotent=True)
        crash_if(point, "between", marker)
        try:
            ticket = durable.step("book", book, self.path, plan, ref, point, marker)
        except durable.AmbiguousStep:
            found = durable.step("check", lambda: [b for b in bookings(self.path)
                                                   if b["ref"] == ref], idempotent=True)
            ticket = found[0]["ticket"] if found else durable.step(
                "book-again", book, self.path, plan, ref, "", marker)
        crash_if(point, "after-commit", marker)
        self.done += 1
        return {"ref": ref, "plan": plan, "ticket": ticket}


@pytest.mark.parametrize("point", ["between", "during", "after-commit"])
def test_kill_at_point_books_once_and_answers_from_the_journal(shared_cluster, tmp_path, point):
    path, key = str(tmp_path / "bookings"), f"crash-{point}"
    s = actorium.session(key, Agent, key, path)
    answers = [actorium.get(s.handle.remote(point, str(tmp_path / f"m{i}")), timeout=60)
               for i in range(2)]
    booked = bookings(path)
    assert sorted(b["ref"] for b in booked) == [f"{key}/0", f"{key}/1"]  # one per request
    for a in answers:
        (b,) = [b for b in booked if b["ref"] == a["ref"]]
        assert (b["kind"], b["ticket"]) == (a["plan"], a["ticket"])
    log = durable.events(key)
    assert [e["kind"] for e in log if e["kind"] != "step"] == ["request", "result"] * 2
    requests = [e["request"] for e in log if e["kind"] == "request"]
    for request in requests:  # each request's steps, once each, in order
        steps = [e["name"] for e in log if e["kind"] == "step" and e["request"] == request]
        assert steps[:2] == ["think", "book"] or steps == ["think", "check"], steps
        assert len(steps) == len(set(steps))
