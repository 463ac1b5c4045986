"""Actors the fidelity tests use to decide when work finishes, without sleeps."""
from __future__ import annotations

import asyncio

import actorium


@actorium.remote
class Gate:
    """Named events: ``wait(k)`` returns once ``open(k)`` was called."""

    def __init__(self):
        self.events: dict = {}

    def _event(self, key) -> asyncio.Event:
        return self.events.setdefault(key, asyncio.Event())

    async def wait(self, key):
        await self._event(key).wait()

    async def open(self, key):
        self._event(key).set()

    async def is_waited(self, key) -> bool:
        return key in self.events


@actorium.remote
class GatedDoubler:
    """``work(x)`` returns ``2 * x`` once the gate ``x`` is open."""

    def __init__(self, gate):
        self.gate = gate

    def work(self, x):
        actorium.get(self.gate.wait.remote(x), timeout=60)
        return 2 * x

    def pid(self):
        import os
        return os.getpid()
