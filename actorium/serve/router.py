"""The router: picks the replica for each request, inside the caller's process.

No extra hop per request: a caller (a driver, an actor, the HTTP ingress) holds a
``Router`` per deployment with the replica table the controller last sent, counts the
requests it has in flight per replica, and sends each call straight to the chosen
replica over the normal actor-call path. ``RouterClient`` (one per process) keeps the
tables fresh and reports the load with a long poll to the controller (``sync``).

Choice: the less busy of two random replicas (by this router's in-flight counts); a
session key sticks to one replica — chosen by rendezvous hashing the first time, then
remembered (and shared through the controller) while that replica runs, so adding
replicas does not move existing sessions. A request waits in the router (queued) while
no replica has room (``max_ongoing_requests``) — e.g. while one cold-starts — and is
refused with ``BackPressureError`` when ``max_queued_requests`` are waiting already.
"""
from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import deque

from actorium.exceptions import BackPressureError, DeploymentError, GetTimeoutError
from actorium.serve import _runtime as rt

QUEUE_TIMEOUT_S = 60.0


class _Waiter:
    """A queued request: a thread's event or a coroutine's future."""
    __slots__ = ("event", "loop", "future")

    def __init__(self, loop=None):
        self.loop = loop
        self.event = None if loop else threading.Event()
        self.future = loop.create_future() if loop else None

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        else:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future) -> None:
    if not future.done():
        future.set_result(None)


def _rendezvous(key: str, rids: list) -> str:
    """The replica a new session goes to: highest hash(key, rid), so every router that
    sees the same table picks the same one."""
    return max(rids, key=lambda rid: hashlib.blake2b(f"{key}\0{rid}".encode(),
                                                     digest_size=8).digest())


class Router:
    def __init__(self, name: str, client):
        self.name = name
        self._client = client
        self._lock = threading.Lock()
        self.table: dict | None = None
        self.version = -1
        self._replicas: list = []          # [(rid, handle)] routable
        self._by_rid: dict = {}
        self._sessions: dict = {}          # durable session key -> (rid, handle)
        self._pins: dict = {}              # session key -> rid, while rid is routable
        self._new_pins: dict = {}
        self._used: set = set()
        self._dead: set = set()            # rids seen dead since the last report
        self.ongoing: dict = {}            # rid -> requests in flight from this process
        self._waiters: deque = deque()
        self._peak = 0
        self._cap = 1
        self._max_queued = 0

    # -- table and reports -------------------------------------------------------
    def apply(self, table: dict) -> None:
        with self._lock:
            self.table = table
            self.version = table["v"]
            cfg = table["config"]
            self._cap = cfg["max_ongoing_requests"]
            self._max_queued = cfg["max_queued_requests"]
            self._replicas = [(rid, h) for rid, h in table["replicas"]]
            self._by_rid = dict(self._replicas)
            self._sessions = {k: (rid, h) for k, (rid, h) in table["sessions"].items()}
            pins = {k: rid for k, rid in self._pins.items() if rid in self._by_rid}
            pins.update(table["pins"])
            self._pins = pins
            waiters, self._waiters = list(self._waiters), deque()
        for w in waiters:
            w.wake()

    def report(self) -> dict:
        with self._lock:
            queued = len(self._waiters)
            rep = {"v": self.version, "ongoing": dict(self.ongoing), "queued": queued,
                   "peak": self._peak, "pins": self._new_pins, "used": list(self._used),
                   "dead": list(self._dead)}
            self._peak = sum(self.ongoing.values()) + queued
            self._new_pins, self._used, self._dead = {}, set(), set()
        return rep

    def busy(self) -> bool:
        return bool(self.ongoing or self._waiters)

    # -- choosing a replica ----------------------------------------------------------
    def _pick(self, session):
        """Under the lock: (rid, handle) with room, counted as in flight; or None."""
        reps = self._replicas
        ongoing = self.ongoing
        cap = self._cap
        if session is not None:
            rid = self._pins.get(session)
            if rid not in self._by_rid:
                if not reps:
                    return None
                rid = _rendezvous(session, [r for r, _ in reps])
                self._pins[session] = self._new_pins[session] = rid
            if ongoing.get(rid, 0) >= cap:
                return None
            chosen = (rid, self._by_rid[rid])
        else:
            n = len(reps)
            if n == 0:
                return None
            if n == 1:
                chosen = reps[0]
            else:
                a, b = random.sample(reps, 2)
                chosen = a if ongoing.get(a[0], 0) <= ongoing.get(b[0], 0) else b
            if ongoing.get(chosen[0], 0) >= cap:
                free = [r for r in reps if ongoing.get(r[0], 0) < cap]
                if not free:
                    return None
                chosen = min(free, key=lambda r: ongoing.get(r[0], 0))
        rid = chosen[0]
        ongoing[rid] = ongoing.get(rid, 0) + 1
        total = sum(ongoing.values()) + len(self._waiters)
        if total > self._peak:
            self._peak = total
        return chosen

    def _try(self, session, waiter):
        """Pick, or enqueue ``waiter``; raise when refused."""
        with self._lock:
            table = self.table
            if table is None or table["deleted"]:
                raise DeploymentError(f"deployment {self.name!r} was deleted")
            chosen = self._pick(session)
            if chosen is not None:
                return chosen
            if table["error"] and not self._replicas:
                raise DeploymentError(f"deployment {self.name!r} has no replica: {table['error']}")
            if len(self._waiters) >= self._max_queued:
                raise BackPressureError(
                    f"deployment {self.name!r}: {len(self._waiters)} requests are queued "
                    f"already (max_queued_requests)")
            self._waiters.append(waiter)
            cold = not self._replicas
        if cold:
            self._client.demand(self)
        return None

    def _forget(self, waiter) -> None:
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def acquire(self, session=None, timeout: float = QUEUE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while True:
            waiter = _Waiter()
            chosen = self._try(session, waiter)
            if chosen is not None:
                return chosen
            left = deadline - time.monotonic()
            if left <= 0 or not waiter.event.wait(left):
                self._forget(waiter)
                raise GetTimeoutError(f"no replica of {self.name!r} had room within "
                                      f"{timeout}s")

    async def acquire_async(self, session=None, timeout: float = QUEUE_TIMEOUT_S):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiter = _Waiter(loop)
            chosen = self._try(session, waiter)
            if chosen is not None:
                return chosen
            try:
                await asyncio.wait_for(waiter.future, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                self._forget(waiter)
                raise GetTimeoutError(f"no replica of {self.name!r} had room within "
                                      f"{timeout}s") from None
            except BaseException:
                self._forget(waiter)
                raise

    def release(self, rid: str) -> None:
        with self._lock:
            n = self.ongoing.get(rid, 1) - 1
            if n > 0:
                self.ongoing[rid] = n
            else:
                self.ongoing.pop(rid, None)
            waiter = self._waiters.popleft() if self._waiters else None
        if waiter is not None:
            waiter.wake()

    # -- durable sessions: one actor per session, opened by the controller ----------
    def session_replica(self, key: str, opened) -> tuple:
        """Count a request to session ``key``'s actor; ``opened`` is [rid, handle] from
        the controller when this router had none."""
        with self._lock:
            self._used.add(key)
            chosen = self._sessions.get(key)
            if chosen is None and opened is not None:
                chosen = self._sessions[key] = (opened[0], opened[1])
            if chosen is None:
                return None
            self.ongoing[chosen[0]] = self.ongoing.get(chosen[0], 0) + 1
            return chosen

    # -- calling -----------------------------------------------------------------------
    def method_kind(self, method: str):
        """num_returns of ``method``; AttributeError naming the methods if unknown."""
        methods = self.table["methods"] if self.table else {}
        if method not in methods:
            raise AttributeError(f"deployment {self.name!r} ({self.table['class_name']}) has "
                                 f"no method {method!r}; it has: "
                                 f"{', '.join(sorted(methods)) or 'none'}")
        return methods[method]

    def durable(self) -> bool:
        return bool(self.table and self.table["config"]["durable"])

    def send(self, chosen, method: str, args, kwargs):
        """Call ``method`` on the chosen replica; its slot is released when it finishes."""
        rid, handle = chosen
        try:
            out = getattr(handle, method).remote(*args, **kwargs)
        except BaseException:
            self.release(rid)
            raise
        ref = out.completed() if isinstance(out, rt.ObjectRefGenerator) else out
        rt.on_done(ref, lambda died: self._finished(rid, died))
        return out

    def _finished(self, rid: str, died: bool) -> None:
        if died:
            # The replica crashed (not drained: drained replicas get no requests). Stop
            # routing to it now; the next report tells the controller.
            with self._lock:
                self._replicas = [r for r in self._replicas if r[0] != rid]
                self._by_rid.pop(rid, None)
                self._sessions = {k: v for k, v in self._sessions.items() if v[0] != rid}
                self._pins = {k: v for k, v in self._pins.items() if v != rid}
                self._dead.add(rid)
        self.release(rid)
