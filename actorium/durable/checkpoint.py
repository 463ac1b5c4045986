"""Checkpoint policy and the snapshot/restore of an actor's state.

``checkpoint="auto"`` snapshots after every completed call; ``checkpoint={"every_calls":
N, "every_seconds": T}`` (either or both) after the call that reaches N calls or T
seconds since the last snapshot. The state is the instance ``__dict__``, or whatever
``__actorium_checkpoint__()`` returns; it is restored with ``__dict__.update`` after the
constructor ran, or handed to ``__actorium_restore__(state)``. Snapshots are cloudpickled:
this is the actor's own trusted state, never output of a sandbox.
"""
from __future__ import annotations

import pickle
import time

import cloudpickle

from actorium.exceptions import CheckpointError

_KEYS = ("every_calls", "every_seconds")


def policy(value) -> dict | None:
    """The normalized policy of a ``checkpoint=`` option; a clear error if malformed."""
    if value is None or value is False:
        return None
    if value == "auto" or value is True:
        return {"every_calls": 1, "every_seconds": 0.0}
    if not isinstance(value, dict):
        raise ValueError(f"checkpoint must be None, 'auto' or a dict with keys "
                         f"{', '.join(_KEYS)}; got {value!r}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown or not value:
        raise ValueError(f"checkpoint dict keys must be among {', '.join(_KEYS)}; got "
                         f"{sorted(value)}")
    calls = value.get("every_calls", 0)
    seconds = value.get("every_seconds", 0.0)
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
        raise ValueError(f"checkpoint every_calls must be an int >= 0, got {calls!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"checkpoint every_seconds must be a number >= 0, got {seconds!r}")
    if not calls and not seconds:
        raise ValueError("checkpoint: every_calls or every_seconds must be > 0")
    return {"every_calls": calls, "every_seconds": float(seconds)}


class Schedule:
    """When the next snapshot is due under a policy."""

    def __init__(self, pol: dict):
        self.every_calls = pol["every_calls"]
        self.every_seconds = pol["every_seconds"]
        self.calls = 0
        self.last = time.monotonic()

    def completed(self) -> bool:
        """Count a completed call; True when a snapshot is due now."""
        self.calls += 1
        if self.every_calls and self.calls >= self.every_calls:
            return True
        return bool(self.every_seconds) and time.monotonic() - self.last >= self.every_seconds

    def taken(self) -> None:
        self.calls = 0
        self.last = time.monotonic()


def snapshot(instance) -> bytes:
    hook = getattr(instance, "__actorium_checkpoint__", None)
    try:
        state = hook() if hook is not None else dict(instance.__dict__)
        return cloudpickle.dumps(state, protocol=5)
    except Exception as exc:
        raise CheckpointError(
            f"could not checkpoint the state of {type(instance).__qualname__}: "
            f"{type(exc).__name__}: {exc}. Make every attribute picklable, or define "
            f"__actorium_checkpoint__/__actorium_restore__.") from None


def restore(instance, blob: bytes) -> None:
    try:
        state = pickle.loads(blob)
        hook = getattr(instance, "__actorium_restore__", None)
        if hook is not None:
            hook(state)
        else:
            instance.__dict__.update(state)
    except Exception as exc:
        raise CheckpointError(
            f"could not restore the checkpoint of {type(instance).__qualname__}: "
            f"{type(exc).__name__}: {exc}") from None
