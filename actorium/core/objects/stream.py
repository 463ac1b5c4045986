"""The caller's side of a streaming call: refs of items as they arrive, in order."""
from __future__ import annotations

import concurrent.futures
import threading

from actorium.core.objects import serialization
from actorium.core.objects.object_ref import DynamicObjectRefGenerator
from actorium.exceptions import GetTimeoutError


def end(spec, results: list, contained) -> tuple[list, list]:
    """The final reply of a streaming or ``"dynamic"`` call arrived: close its stream,
    and return the (results, contained) to store under its ref. A dynamic call's ref
    then holds a DynamicObjectRefGenerator of the item refs, which keeps them alive."""
    stream = spec.stream
    stream.finish(results[0][2] if results else 0)
    if spec.num_returns != "dynamic" or not results or \
            results[0][0] == serialization.VALUE_ERROR:
        return results, contained
    refs = stream.refs[:stream.end]
    ser = serialization.serialize(DynamicObjectRefGenerator(refs))
    return ([[serialization.VALUE_INLINE, ser.to_bytes(), ser.size]],
            [(r.id, r.owner) for r in refs])


class Stream:
    """Items of one streaming task as they arrive; ``end`` is the item count once known."""

    def __init__(self, worker, task_id: bytes):
        self.worker = worker
        self.task_id = task_id
        self.refs: list = []
        self.end: int | None = None
        self.cond = threading.Condition()
        self.futures: dict[int, list] = {}

    def add(self, index: int, ref) -> None:
        with self.cond:
            while len(self.refs) <= index:
                self.refs.append(None)
            self.refs[index] = ref
            self.cond.notify_all()
        self._fire()

    def has(self, index: int) -> bool:
        return index < len(self.refs) and self.refs[index] is not None

    def finish(self, count: int) -> None:
        with self.cond:
            self.end = count
            self.cond.notify_all()
        self._fire()

    def _ready(self, index: int):
        if index < len(self.refs) and self.refs[index] is not None:
            return True, self.refs[index]
        if self.end is not None and index >= self.end:
            return True, None
        return False, None

    def wait_item(self, index: int, timeout):
        with self.cond:
            ok = self.cond.wait_for(lambda: self._ready(index)[0], timeout)
            if not ok:
                raise GetTimeoutError(f"no item {index} of the stream within {timeout}s")
            return self._ready(index)[1]

    def future_item(self, index: int):
        fut = concurrent.futures.Future()
        with self.cond:
            ok, ref = self._ready(index)
            if not ok:
                self.futures.setdefault(index, []).append(fut)
                return fut
        fut.set_result(ref)
        return fut

    def _fire(self) -> None:
        with self.cond:
            ready = [(i, fs) for i, fs in self.futures.items() if self._ready(i)[0]]
            for i, _ in ready:
                del self.futures[i]
        for i, fs in ready:
            ref = self._ready(i)[1]
            for f in fs:
                try:
                    f.set_result(ref)
                except concurrent.futures.InvalidStateError:
                    pass  # its awaiting coroutine was cancelled (e.g. the client left)
