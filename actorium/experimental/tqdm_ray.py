"""Progress bars from any task or actor, drawn in the driver (``ray.experimental.tqdm_ray``).

A ``tqdm`` made in a worker prints its state as one marked line of output; worker
output already reaches the driver line by line (``LineForwarder`` -> raylet ->
``LogBatch``), where the marked lines are taken out of the printed output and handed
to one bar manager, which draws one bar per tqdm: with the ``tqdm`` package if it is
installed, else as plain text lines. Updates are sent at most every
``flush_interval_s`` per bar (and on close), so a tight loop costs no messages.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid as _uuid
from typing import Iterable

from actorium.core.worker import core_worker, output

_MARKER = "__actorium_tqdm__"


class tqdm:
    """A progress bar usable in tasks, actors and the driver, with tqdm's common
    arguments: ``tqdm(iterable, desc=..., total=..., unit=...)``, ``update(n)``,
    ``set_description``, ``refresh``, ``close``; also a context manager."""

    def __init__(self, iterable: Iterable | None = None, desc: str | None = None,
                 total: int | None = None, unit: str | None = None,
                 position: int | None = None, flush_interval_s: float = 1.0):
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except (TypeError, AttributeError):
                total = None
        self._iterable = iterable
        self._desc = desc or ""
        self._total = total
        self._unit = unit or "it"
        self._position = position
        self._flush_interval_s = flush_interval_s
        self._uuid = _uuid.uuid4().hex
        self._n = 0
        self._closed = False
        self._last_flush = 0.0
        self._dump()

    def update(self, n: int = 1) -> None:
        self._n += n
        if time.monotonic() - self._last_flush >= self._flush_interval_s:
            self._dump()

    def set_description(self, desc: str) -> None:
        self._desc = desc
        self._dump()

    def refresh(self) -> None:
        self._dump()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._dump()

    def __iter__(self):
        if self._iterable is None:
            raise ValueError("this tqdm was made without an iterable")
        for item in self._iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "tqdm":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def n(self) -> int:
        return self._n

    def _state(self) -> dict:
        return {"uuid": self._uuid, "desc": self._desc, "total": self._total,
                "n": self._n, "unit": self._unit, "pos": self._position,
                "closed": self._closed}

    def _dump(self) -> None:
        self._last_flush = time.monotonic()
        worker = core_worker.global_worker()
        if worker is not None and worker.kind == "worker":
            # one line on the worker's stdout, which the driver receives and takes out
            print(json.dumps(self._state()) + " " + _MARKER, flush=True)
        else:
            instance().update(self._state(), os.getpid(), "driver")


def safe_print(*args, **kwargs) -> None:
    """Print without tearing the bars: in the driver, through the bar manager."""
    instance().write(" ".join(str(a) for a in args), **kwargs)


class _BarManager:
    """The driver's bars: one per tqdm (by process and id), drawn as they change."""

    def __init__(self):
        self._cond = threading.Condition()
        self._bars: dict = {}      # (pid, uuid) -> latest state
        self._drawn: dict = {}     # (pid, uuid) -> renderer handle
        self._renderer = None

    def update(self, state: dict, pid: int, name: str) -> None:
        key = (pid, state["uuid"])
        with self._cond:
            state = dict(state, pid=pid, source=name)
            self._bars[key] = state
            self._draw(key, state)
            self._cond.notify_all()

    def bars(self) -> list[dict]:
        """The latest state of every bar seen: desc, n, total, unit, closed, pid."""
        with self._cond:
            return [dict(s) for s in self._bars.values()]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate(bars())`` holds; False after ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate([dict(s) for s in self._bars.values()]), timeout)

    def write(self, text: str, **kwargs) -> None:
        with self._cond:
            self._renderer_or_make().write(text, **kwargs)

    def _draw(self, key, state: dict) -> None:
        renderer = self._renderer_or_make()
        try:
            renderer.draw(key, state)
        except Exception:
            pass  # a bar that cannot be drawn must not lose the update

    def _renderer_or_make(self):
        if self._renderer is None:
            try:
                import tqdm as real_tqdm  # optional: real bars when installed
                self._renderer = _TqdmRenderer(real_tqdm)
            except ImportError:
                self._renderer = _TextRenderer()
        return self._renderer


class _TqdmRenderer:
    """One ``tqdm.tqdm`` per bar, each on its own line."""

    def __init__(self, module):
        self._module = module
        self._bars: dict = {}

    def draw(self, key, state: dict) -> None:
        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = self._module.tqdm(
                desc=_label(state), total=state["total"], unit=state["unit"],
                position=len(self._bars), leave=True)
        bar.set_description(_label(state), refresh=False)
        bar.total = state["total"]
        bar.n = state["n"]
        bar.refresh()
        if state["closed"]:
            bar.close()

    def write(self, text: str, **kwargs) -> None:
        self._module.tqdm.write(text, **kwargs)


class _TextRenderer:
    """Without tqdm: one text line per bar update on stderr (updates are already
    throttled per bar), ending with the bar's final line when it closes."""

    def draw(self, key, state: dict) -> None:
        sys.stderr.write(_text_bar(state) + "\n")
        sys.stderr.flush()

    def write(self, text: str, **kwargs) -> None:
        print(text, **kwargs)


def _label(state: dict) -> str:
    return state["desc"] or f"pid={state['pid']}"


def _text_bar(state: dict, width: int = 20) -> str:
    n, total, unit = state["n"], state["total"], state["unit"]
    if total:
        filled = min(width, int(width * n / total))
        bar = f"{100 * n / total:3.0f}%|{'#' * filled}{' ' * (width - filled)}| {n}/{total}"
    else:
        bar = f"{n}"
    end = " (done)" if state["closed"] else ""
    return f"{_label(state)}: {bar} {unit}{end}"


_manager: _BarManager | None = None
_manager_lock = threading.Lock()


def instance() -> _BarManager:
    """This process's bar manager (the driver's draws every bar of its job)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = _BarManager()
        return _manager


def _on_marked_line(line: str, pid: int, name: str) -> None:
    instance().update(json.loads(line[:line.rindex(_MARKER)]), pid, name)


output.register_line_handler(_MARKER, _on_marked_line)

__all__ = ["instance", "safe_print", "tqdm"]
