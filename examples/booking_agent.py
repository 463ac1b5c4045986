"""A ticket-booking agent whose machine keeps dying, and which never books twice.

Each session is a durable actor (``actorium.session``). A request goes through three
journaled steps: the (randomized stand-in) model picks a flight or a train, the booking
service is called once, and the model writes the answer. With ``--chaos`` a thread
SIGKILLs agent processes at random moments while the sessions run; every cut-off request
is re-delivered to the restarted agent, which replays its journal: the model's earlier
choice is reused (no train instead of a flight), and a booking that may or may not have
happened is checked with the service instead of being made again.

    python examples/booking_agent.py                    # 10 sessions, no crashes
    python examples/booking_agent.py --chaos            # 100 sessions, >= 20 crashes
    python examples/booking_agent.py --chaos --nodes 3  # ... on 3 nodes, killing nodes too

With ``--nodes N`` the sessions run on a Cluster of N real node processes (the head and
N - 1 others) and, with ``--chaos``, a second thread SIGKILLs a random non-head node (its
raylet and every agent on it at once) every ``--node-interval`` seconds, after starting a
replacement: the sessions it hosted wake on other nodes from checkpoint and journal.

The last line says how many bookings were duplicated or inconsistent (must be 0).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

import cloudpickle

import actorium
from actorium import durable

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROUTES = ["Paris -> Berlin", "Oslo -> Rome", "Lisbon -> Vienna", "Madrid -> Prague"]


class BookingService:
    """The outside world: a file every booking call appends to (it survives any crash
    of the agents). It does not deduplicate: a repeated call is a repeated booking."""

    def __init__(self, path: str):
        self.path = path

    def book(self, kind: str, route: str, ref: str) -> str:
        time.sleep(random.uniform(0.001, 0.01))  # the remote service thinks
        ticket = f"{kind[:2].upper()}-{uuid.uuid4().hex[:8]}"
        line = json.dumps({"ref": ref, "kind": kind, "route": route, "ticket": ticket})
        with open(self.path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line + "\n")
        return ticket

    def find(self, ref: str) -> dict | None:
        for booking in self.all():
            if booking["ref"] == ref:
                return booking
        return None

    def all(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]


def think(history: list, request: str) -> dict:
    """Stand-in for a model call: slow and random, like the real thing."""
    time.sleep(random.uniform(0.002, 0.02))
    return {"tool": random.choice(["flight", "train"]), "route": request}


def write_answer(kind: str, ticket: str, route: str) -> str:
    time.sleep(random.uniform(0.001, 0.01))
    return random.choice(["Done!", "All set."]) + f" Your {kind} {route} is {ticket}."


class BookingAgent:
    def __init__(self, user: str, service_path: str, pid_dir: str):
        self.user = user
        self.service = BookingService(service_path)
        self.history: list = []
        # Where the chaos monkey finds us: written again by every restarted process.
        with open(os.path.join(pid_dir, user), "w") as f:
            f.write(str(os.getpid()))

    def handle(self, request: str) -> dict:
        n = len(self.history)  # restored from the checkpoint: the same on a re-run
        ref = f"{self.user}/{n}"
        # A model call has no outside effect: if a crash cut it off, nobody saw its output,
        # so running it again is safe (idempotent). Once committed, it is never re-run.
        plan = durable.step("think", think, self.history, request, idempotent=True)
        durable.emit(self.user, {"kind": "plan", "n": n, "tool": plan["tool"]})
        ticket = self._book(plan, ref)
        answer = durable.step("answer", write_answer, plan["tool"], ticket, plan["route"],
                              idempotent=True)
        self.history.append((request, answer))
        return {"ref": ref, "kind": plan["tool"], "ticket": ticket, "answer": answer}

    def _book(self, plan: dict, ref: str) -> str:
        """Book once. If a crash left a booking ambiguous, ask the service about it
        (a journaled, idempotent check) and book again only if it never happened."""
        attempt = 0
        while True:
            try:
                return durable.step(f"book-{attempt}", self.service.book,
                                    plan["tool"], plan["route"], ref)
            except durable.AmbiguousStep:
                found = durable.step(f"check-{attempt}", self.service.find, ref,
                                     idempotent=True)
                if found is not None:
                    return found["ticket"]
                attempt += 1


def chaos(pid_dir: str, stop: threading.Event, interval: float, counter: list) -> None:
    """SIGKILL a random live agent process every ``interval`` seconds."""
    rng = random.Random(7)
    while not stop.wait(rng.uniform(0.5, 1.5) * interval):
        pids = []
        for name in os.listdir(pid_dir):
            try:
                pids.append(int(open(os.path.join(pid_dir, name)).read()))
            except (OSError, ValueError):
                continue
        rng.shuffle(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # parked or already restarted
            counter[0] += 1
            break


def node_chaos(cluster, stop: threading.Event, interval: float, counter: list) -> None:
    """SIGKILL a random non-head node every ``interval`` seconds, after adding a new one
    (so the cluster keeps its size)."""
    rng = random.Random(11)
    while not stop.wait(rng.uniform(0.5, 1.5) * interval):
        victims = list(cluster.worker_nodes)
        if not victims:
            continue
        cluster.add_node(num_cpus=2)
        cluster.remove_node(rng.choice(victims), allow_graceful=False)
        counter[0] += 1


def run_session(i: int, requests: int, service_path: str, pid_dir: str) -> list[dict]:
    user = f"user-{i}"
    agent = actorium.session(user, BookingAgent, user, service_path, pid_dir)
    answers = []
    for r in range(requests):
        route = ROUTES[(i + r) % len(ROUTES)]
        answers.append(actorium.get(agent.handle.remote(route), timeout=300))
        if r == 0:
            agent.park()  # no process until the next request wakes it, with its state
    agent.park()
    return answers


def check(answers: list[dict], service: BookingService, sessions: int) -> tuple[int, int]:
    """(duplicates, inconsistencies) between answers, bookings and the event logs."""
    by_ref: dict[str, list] = {}
    for b in service.all():
        by_ref.setdefault(b["ref"], []).append(b)
    duplicates = sum(len(v) - 1 for v in by_ref.values())
    bad = 0
    plans = {}
    for i in range(sessions):
        user = f"user-{i}"
        log = durable.events(user)
        for e in log:
            if e.get("kind") == "plan":
                key = f"{user}/{e['n']}"
                bad += key in plans  # the same plan logged twice
                plans[key] = e["tool"]
        requests = [e for e in log if e.get("kind") == "request"]
        results = [e for e in log if e.get("kind") == "result"]
        bad += len({e["request"] for e in requests}) != len(requests)
        bad += len({e["request"] for e in results}) != len(results)
    for a in answers:
        booked = by_ref.get(a["ref"], [])
        if len(booked) != 1 or booked[0]["ticket"] != a["ticket"] or \
                booked[0]["kind"] != a["kind"] or plans.get(a["ref"]) != a["kind"] or \
                a["ticket"] not in a["answer"]:
            bad += 1
    return duplicates, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chaos", action="store_true", help="kill agent processes at random")
    ap.add_argument("--sessions", type=int, default=None, help="default 10, or 100 with --chaos")
    ap.add_argument("--requests", type=int, default=3, help="requests per session")
    ap.add_argument("--parallel", type=int, default=20, help="sessions running at once")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between kills")
    ap.add_argument("--nodes", type=int, default=0,
                    help="run on a Cluster of this many node processes (with --chaos, "
                         "non-head nodes are killed too)")
    ap.add_argument("--node-interval", type=float, default=3.0,
                    help="seconds between node kills (with --chaos and --nodes)")
    ap.add_argument("--min-crashes", type=int, default=None,
                    help="fail unless at least this many crashes were injected (default 20 "
                         "with --chaos)")
    args = ap.parse_args(argv)
    sessions = args.sessions or (100 if args.chaos else 10)
    min_crashes = args.min_crashes if args.min_crashes is not None else (20 if args.chaos else 0)
    work = tempfile.mkdtemp(prefix="booking-")
    service_path = os.path.join(work, "bookings.jsonl")
    pid_dir = os.path.join(work, "pids")
    os.makedirs(pid_dir)
    cluster = None
    if args.nodes:
        from actorium.cluster_utils import Cluster
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=2)
        actorium.init(address=cluster.address)
    else:
        actorium.init(num_cpus=2)
    stop, crashes, node_kills = threading.Event(), [0], [0]
    killer = threading.Thread(target=chaos, args=(pid_dir, stop, args.interval, crashes),
                              daemon=True)
    node_killer = threading.Thread(target=node_chaos, daemon=True, args=(
        cluster, stop, args.node_interval, node_kills))
    try:
        started = time.monotonic()
        if args.chaos:
            killer.start()
            if cluster is not None and args.nodes > 1:
                node_killer.start()
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            futures = [pool.submit(run_session, i, args.requests, service_path, pid_dir)
                       for i in range(sessions)]
            answers = [a for f in futures for a in f.result()]
        stop.set()
        if args.chaos:
            killer.join()
        if node_killer.is_alive() or node_kills[0]:
            node_killer.join()
        elapsed = time.monotonic() - started
        duplicates, inconsistent = check(answers, BookingService(service_path), sessions)
        print(f"sessions: {sessions}, requests: {len(answers)}, bookings: "
              f"{len(BookingService(service_path).all())}, wall {elapsed:.1f}s")
        print(f"injected crashes: {crashes[0]}")
        if cluster is not None:
            print(f"injected node kills: {node_kills[0]} (of {args.nodes} nodes)")
        print(f"duplicate bookings: {duplicates}, inconsistent: {inconsistent}")
    finally:
        stop.set()
        if node_killer.is_alive():
            node_killer.join()
        actorium.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    ok = duplicates == 0 and inconsistent == 0 and crashes[0] >= min_crashes
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
