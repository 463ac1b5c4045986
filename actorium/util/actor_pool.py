"""``ActorPool``: spread work over a fixed set of actors, as ``ray.util.ActorPool``.

Each submitted value goes to an idle actor, or waits in a queue until one is returned
to the pool; an actor is returned when its result is taken (``get_next*``). Results
come back in submission order (``get_next``, ``map``) or as they finish
(``get_next_unordered``, ``map_unordered``). The pool lives in the process that made
it and is not thread-safe, like Ray's.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from actorium.core import api
from actorium.core.objects.object_ref import ObjectRef

_TIMEOUT = "Timed out waiting for result"


class ActorPool:
    """A pool of actor handles; ``fn(actor, value)`` must return an ObjectRef (or a
    list of them) of one call on ``actor``."""

    def __init__(self, actors: Iterable):
        self._idle: list = list(actors)
        self._busy: dict = {}          # result key -> (submission index, actor)
        self._by_index: dict = {}      # submission index -> result (ref or list of refs)
        self._next_index = 0           # index the next submission gets
        self._next_return = 0          # index get_next returns next
        self._waiting: list = []       # (fn, value) submitted while no actor was idle

    # -- submitting -------------------------------------------------------------
    def submit(self, fn: Callable[[Any, Any], Any], value) -> None:
        """Run ``fn(actor, value)`` on an idle actor now, or once one is returned."""
        if not self._idle:
            self._waiting.append((fn, value))
            return
        actor = self._idle[-1]
        result = fn(actor, value)
        key = _key(result)
        self._idle.pop()  # only now: an fn that raised leaves the actor idle
        self._busy[key] = (self._next_index, actor)
        self._by_index[self._next_index] = result
        self._next_index += 1

    def map(self, fn: Callable, values: Iterable):
        """Submit every value and yield the results in the order of ``values``.

        Results of earlier submissions not yet taken are dropped first (their actors
        come back to the pool as they finish), as in Ray."""
        self._drop_pending(ordered=True)
        for v in values:
            self.submit(fn, v)
        return self._results(self.get_next)

    def map_unordered(self, fn: Callable, values: Iterable):
        """Like ``map``, but yield each result as soon as it is ready."""
        self._drop_pending(ordered=False)
        for v in values:
            self.submit(fn, v)
        return self._results(self.get_next_unordered)

    def _results(self, take):
        while self.has_next():
            yield take()

    def _drop_pending(self, ordered: bool) -> None:
        """Results of earlier submissions nobody took are dropped, values and errors
        alike, as in Ray: ``map`` skips those not ready yet (their actors go back to
        the pool and finish them first), ``map_unordered`` waits for them."""
        while self.has_next():
            try:
                if ordered:
                    self._take_next(0, ignore_if_timedout=True)
                else:
                    self._take_unordered(None, False)
            except TimeoutError:
                pass

    # -- taking results ---------------------------------------------------------
    def has_next(self) -> bool:
        """Whether a submitted value's result has not been taken yet."""
        return bool(self._busy)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """The next result in submission order.

        ``timeout``: raise ``TimeoutError`` if it is not ready within that many
        seconds; the result stays next unless ``ignore_if_timedout``, which skips it
        (its actor returns to the pool) before raising."""
        return api.get(self._take_next(timeout, ignore_if_timedout))

    def get_next_unordered(self, timeout: float | None = None,
                           ignore_if_timedout: bool = False):
        """Any ready result, the first to finish. After this, ``get_next`` refuses
        to run until the pool is drained (the order is lost). ``TimeoutError`` if
        none is ready within ``timeout`` seconds."""
        return api.get(self._take_unordered(timeout, ignore_if_timedout))

    def _take_next(self, timeout, ignore_if_timedout):
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return >= self._next_index:
            raise ValueError("It is not allowed to call get_next() after "
                             "get_next_unordered().")
        result = self._by_index[self._next_return]
        timed_out = timeout is not None and not self._ready([_key(result)], timeout)
        if timed_out and not ignore_if_timedout:
            raise TimeoutError(_TIMEOUT)
        del self._by_index[self._next_return]
        self._next_return += 1
        _, actor = self._busy.pop(_key(result))
        self._return_actor(actor)
        if timed_out:
            raise TimeoutError(f"{_TIMEOUT}. The task {result} has been ignored.")
        return result

    def _take_unordered(self, timeout, ignore_if_timedout):
        if not self.has_next():
            raise StopIteration("No more results to get")
        ready = self._ready(list(self._busy), timeout, one=True)
        if not ready:
            # ignore_if_timedout skips nothing here: no particular result is "next"
            raise TimeoutError(_TIMEOUT)
        index, actor = self._busy.pop(ready[0])
        result = self._by_index.pop(index)
        self._next_return = max(self._next_return, index + 1)
        self._return_actor(actor)
        return result

    @staticmethod
    def _ready(keys: list, timeout: float | None, one: bool = False) -> list:
        """The keys (a ref, or a tuple of refs) whose refs are all ready: every key
        (``one=False``) or at least one, waiting at most ``timeout`` seconds."""
        refs = [r for k in keys for r in _refs(k)]
        deadline = None if timeout is None else time.monotonic() + timeout
        n = 1 if one else len(refs)
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = api.wait(refs, num_returns=n, timeout=left, fetch_local=True)
            done = set(done)
            ready = [k for k in keys if all(r in done for r in _refs(k))]
            if ready or len(done) < n or n == len(refs):
                return ready
            n = len(done) + 1  # refs of several keys finished, no key whole yet

    # -- the actors -------------------------------------------------------------
    def _return_actor(self, actor) -> None:
        self._idle.append(actor)
        if self._waiting:
            self.submit(*self._waiting.pop(0))

    def has_free(self) -> bool:
        """Whether an actor is idle and no submitted value is waiting for one."""
        return bool(self._idle) and not self._waiting

    def pop_idle(self):
        """Take an idle actor out of the pool (None if there is none free)."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor) -> None:
        """Add an actor to the pool; it takes a waiting value at once if there is one."""
        busy = [a for _, a in self._busy.values()]
        if actor in self._idle or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)


def _key(result):
    """A hashable key for what ``fn`` returned: a ref, or a tuple of refs."""
    if isinstance(result, ObjectRef):
        return result
    if isinstance(result, (list, tuple)) and result and all(
            isinstance(r, ObjectRef) for r in result):
        return tuple(result)
    raise TypeError(f"ActorPool: fn(actor, value) must return an ObjectRef or a list of "
                    f"ObjectRefs (e.g. lambda a, v: a.method.remote(v)), got "
                    f"{type(result).__name__}")


def _refs(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)
