"""An actor-backed FIFO queue shared by tasks and actors, as ``ray.util.queue.Queue``.

The items live in one async actor; every method is a call to it, so a ``Queue`` can
be passed to tasks and actors and used from all of them. Blocking ``put``/``get``
wait in the actor (a waiting caller does not stop others); ``timeout`` bounds the wait
and raises ``Full``/``Empty``, as the standard library's queue does.
"""
from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable

from actorium.core import api


class Empty(_stdlib_queue.Empty):
    """``get`` found no item (at once, or within its timeout)."""


class Full(_stdlib_queue.Full):
    """``put`` found no room (at once, or within its timeout)."""


class _QueueActor:
    """The queue's state. Outcomes come back as values, not raised: a full or empty
    queue is an ordinary answer here, not an error with a remote traceback."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item, timeout=None) -> bool:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def get(self, timeout=None):
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return False, None

    def put_nowait(self, item) -> bool:
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            return False

    def put_nowait_batch(self, items: list) -> bool:
        """All or nothing: the batch goes in only if it fits whole."""
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            return False
        for item in items:
            self.queue.put_nowait(item)
        return True

    def get_nowait(self):
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    def get_nowait_batch(self, num_items: int):
        if num_items > self.queue.qsize():
            return False, self.queue.qsize()
        return True, [self.queue.get_nowait() for _ in range(num_items)]


_QueueActorClass = api.remote(_QueueActor)


class Queue:
    """A first-in, first-out queue of at most ``maxsize`` items (0: unbounded).

    ``actor_options``: options of the actor holding the items (as
    ``.options(...)``: ``num_cpus``, ``name``, ``scheduling_strategy``, ...)."""

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, got {type(maxsize).__name__}")
        if actor_options is not None and not isinstance(actor_options, dict):
            raise TypeError("actor_options must be a dict of actor options")
        self.maxsize = maxsize
        self.actor = _QueueActorClass.options(**(actor_options or {})).remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        return api.get(self._actor().qsize.remote())

    def qsize(self) -> int:
        return self.size()

    def empty(self) -> bool:
        return api.get(self._actor().empty.remote())

    def full(self) -> bool:
        return api.get(self._actor().full.remote())

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; if the queue is full, wait for room (at most ``timeout``
        seconds) when ``block``, else raise ``Full`` at once."""
        if not block:
            return self.put_nowait(item)
        if not api.get(self._actor().put.remote(item, _check_timeout(timeout))):
            raise Full(f"no room in the queue within {timeout} s")

    async def put_async(self, item, block: bool = True, timeout: float | None = None) -> None:
        if not block:
            ok = await self._actor().put_nowait.remote(item)
        else:
            ok = await self._actor().put.remote(item, _check_timeout(timeout))
        if not ok:
            raise Full("the queue is full" if not block
                       else f"no room in the queue within {timeout} s")

    def get(self, block: bool = True, timeout: float | None = None):
        """Remove and return the oldest item; if there is none, wait for one (at
        most ``timeout`` seconds) when ``block``, else raise ``Empty`` at once."""
        if not block:
            return self.get_nowait()
        ok, item = api.get(self._actor().get.remote(_check_timeout(timeout)))
        if not ok:
            raise Empty(f"no item in the queue within {timeout} s")
        return item

    async def get_async(self, block: bool = True, timeout: float | None = None):
        if not block:
            ok, item = await self._actor().get_nowait.remote()
        else:
            ok, item = await self._actor().get.remote(_check_timeout(timeout))
        if not ok:
            raise Empty("the queue is empty" if not block
                        else f"no item in the queue within {timeout} s")
        return item

    def put_nowait(self, item) -> None:
        if not api.get(self._actor().put_nowait.remote(item)):
            raise Full("the queue is full")

    def put_nowait_batch(self, items) -> None:
        """Add every item of ``items`` at once, or none (``Full``) if they do not fit."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        items = list(items)
        if not api.get(self._actor().put_nowait_batch.remote(items)):
            raise Full(f"Cannot add {len(items)} items to a queue of maxsize {self.maxsize} "
                       f"holding {self.size()}")

    def get_nowait(self):
        ok, item = api.get(self._actor().get_nowait.remote())
        if not ok:
            raise Empty("the queue is empty")
        return item

    def get_nowait_batch(self, num_items: int) -> list:
        """Remove and return the ``num_items`` oldest items, or none (``Empty``) if
        the queue holds fewer."""
        if isinstance(num_items, bool) or not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        ok, items = api.get(self._actor().get_nowait_batch.remote(num_items))
        if not ok:
            raise Empty(f"Cannot get {num_items} items from a queue holding {items}")
        return items

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """Stop the queue's actor; its items are lost. (``force`` and
        ``grace_period_s`` are Ray's; the actor is killed either way, since it holds
        no work that could finish.)"""
        if self.actor is not None:
            api.kill(self.actor, no_restart=True)
        self.actor = None

    def _actor(self):
        if self.actor is None:
            raise RuntimeError("this Queue was shut down")
        return self.actor


def _check_timeout(timeout):
    if timeout is not None and (isinstance(timeout, bool) or
                                not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


__all__ = ["Empty", "Full", "Queue"]
