"""``actorium.session(key, cls, *args)``: one durable actor per session key, cluster-wide.

The session's actor is a detached actor named ``key`` in the ``actorium-sessions``
namespace, created with ``get_if_exists`` so every driver that asks for the same key gets
the same live actor (the gcs decides atomically). It checkpoints after every call by
default and journals its steps under ``session:<key>``, not under its actor id, so a
re-created actor (after ``park``, or on another node) finds the session's state and
journal. Every call is logged in the session's event log (request, steps, result).

A parked session has no process: ``park()`` waits for this handle's calls, then stops
the actor; its checkpoint and log stay in the durable store. The next call through any
session handle for the key creates the actor again, which restores the checkpoint
before it takes the call.
"""
from __future__ import annotations

import threading

from actorium.core import api
from actorium.core.actor import ActorClass, ActorHandle, ActorMethod
from actorium.durable.eventlog import events

NAMESPACE = "actorium-sessions"


def session(key: str, cls, *args, **kwargs) -> "SessionHandle":
    """Get or create the actor of session ``key``: an instance of ``cls`` (a class, or an
    ``@actorium.remote`` class) built with ``*args, **kwargs`` when it does not exist."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"actorium.session(): key must be a non-empty str, got {key!r}")
    if not isinstance(cls, ActorClass):
        if not isinstance(cls, type):
            raise TypeError(f"actorium.session(): cls must be a class or an "
                            f"@actorium.remote class, got {type(cls).__name__}")
        cls = api.remote(cls)
    o = cls._options
    actor_cls = cls.options(
        name=key, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=o.max_restarts if o.max_restarts else -1,
        checkpoint=o.checkpoint if o.checkpoint is not None else "auto")
    return SessionHandle(key, actor_cls, args, kwargs)


class SessionHandle:
    """Routes every call to the session's live actor, waking it first if it is parked
    or was stopped. Picklable: pass it to tasks and actors like an actor handle."""

    def __init__(self, key: str, actor_cls: ActorClass, args: tuple, kwargs: dict):
        self._key = key
        self._actor_cls = actor_cls
        self._args = args
        self._kwargs = kwargs
        self._lock = threading.Lock()
        self._handle: ActorHandle | None = None
        self._wake()

    @property
    def key(self) -> str:
        return self._key

    @property
    def actor(self) -> ActorHandle:
        """The handle of the session's current actor (woken if needed)."""
        return self._wake()

    def _wake(self) -> ActorHandle:
        with self._lock:
            if self._handle is None or _is_dead(self._handle):
                self._handle = self._actor_cls._create(self._args, self._kwargs,
                                                       session=self._key)
            return self._handle

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        return _SessionMethod(self, item)

    def park(self, timeout: float = 60.0) -> None:
        """Stop the session's actor once this handle's calls are done; its state stays
        in the durable store and the next call wakes it."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is None or _is_dead(handle):
            return
        # Calls from one caller run in order, so this returns after all earlier ones.
        api.get(ActorMethod(handle, "__actorium_ready__", 1).remote(), timeout=timeout)
        api.kill(handle, no_restart=True)

    def events(self, start: int = 0, end: int | None = None) -> list:
        return events(self._key, start, end)

    def __reduce__(self):
        return (_rebuild, (self._key, self._actor_cls, self._args, self._kwargs))

    def __repr__(self) -> str:
        return f"Session({self._key!r}, {self._actor_cls._name})"


def _rebuild(key, actor_cls, args, kwargs) -> SessionHandle:
    return SessionHandle(key, actor_cls, args, kwargs)


class _SessionMethod:
    def __init__(self, session: SessionHandle, name: str):
        self._session = session
        self._name = name

    def remote(self, *args, **kwargs):
        return getattr(self._session._wake(), self._name).remote(*args, **kwargs)

    def options(self, **kwargs):
        return getattr(self._session._wake(), self._name).options(**kwargs)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Session methods cannot be called directly; use "
                        f"session.{self._name}.remote()")


def _is_dead(handle: ActorHandle) -> bool:
    """Whether this process has seen the actor die (killed, parked by anyone)."""
    from actorium.core.objects.object_ref import _worker
    if _worker is None:
        return False
    return _worker.actors.is_dead(handle.actor_id)
