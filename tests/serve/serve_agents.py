"""Classes the serve tests deploy (importable by replicas: pickled by value)."""
from __future__ import annotations

import os
import time


class Echo:
    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.calls = 0

    def echo(self, value):
        self.calls += 1
        return {"value": value, "pid": os.getpid()}

    def pid(self):
        return os.getpid()

    def work(self, seconds: float = 0.02):
        time.sleep(seconds)
        return os.getpid()

    def boom(self, message: str):
        raise ValueError(message)

    def unserializable(self):
        return {1, 2}

    def tokens(self, text: str):
        for tok in text.split():
            yield tok


class Chat:
    """A session's conversation state: what a durable session must keep."""
    def __init__(self, model: str):
        self.model = model
        self.turns = []

    def chat(self, text: str):
        self.turns.append(text)
        return {"turn": len(self.turns), "pid": os.getpid(), "turns": list(self.turns)}


class Streamer:
    def __init__(self):
        self.produced = 0

    def wait_for_flag(self, path: str):
        """Yields once, then waits (bounded) for ``path`` before the second item."""
        yield "first"
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
        yield "second" if os.path.exists(path) else "timed-out"

    def forever(self, period: float = 0.02):
        while True:
            self.produced += 1
            yield self.produced
            time.sleep(period)

    def count(self):
        return self.produced


class Slow:
    def __init__(self):
        pass

    def hold(self, path: str):
        """Runs until ``path`` exists (bounded): keeps one request in flight."""
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.005)
        return "done"
