"""``Deployment`` and ``DeploymentHandle``: calling a deployment from Python.

``dep.handle.chat.remote(x)`` returns the ObjectRef of a direct call to the replica the
process's router chose (or an ObjectRefGenerator for a generator method), so
``actorium.get``, ``wait``, ``await`` and ``cancel`` work on it as on any actor call.
It blocks only while the request is queued (no replica has room, e.g. during a cold
start from zero), at most ``QUEUE_TIMEOUT_S``.
"""
from __future__ import annotations

from actorium.serve import _runtime as rt
from actorium.serve.client import client, delete_deployment, deployments
from actorium.serve.router import QUEUE_TIMEOUT_S


class DeploymentHandle:
    """Routes calls to a deployment's replicas. Picklable: pass it to tasks and actors,
    which then route from their own process."""

    def __init__(self, name: str, session: str | None = None):
        self._name = name
        self._session = session

    @property
    def deployment_name(self) -> str:
        return self._name

    def options(self, *, session: str | None = None) -> "DeploymentHandle":
        """``session=KEY``: every call with this key goes to the same replica while it
        runs (with ``durable=True``: to the session's own durable actor)."""
        if session is not None and (not isinstance(session, str) or not session):
            raise TypeError(f"session must be a non-empty str, got {session!r}")
        return DeploymentHandle(self._name, session)

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        return _HandleMethod(self, item)

    def __reduce__(self):
        return (DeploymentHandle, (self._name, self._session))

    def __repr__(self) -> str:
        s = f", session={self._session!r}" if self._session else ""
        return f"DeploymentHandle({self._name!r}{s})"


class _HandleMethod:
    __slots__ = ("_handle", "_method")

    def __init__(self, handle: DeploymentHandle, method: str):
        self._handle = handle
        self._method = method

    def remote(self, *args, **kwargs):
        router = client().router(self._handle._name)
        router.method_kind(self._method)
        session = self._handle._session
        if session is not None and router.durable():
            chosen = open_durable_session(router, session)
        else:
            chosen = router.acquire(session, QUEUE_TIMEOUT_S)
        return router.send(chosen, self._method, args, kwargs)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Deployment methods cannot be called directly; use "
                        f"handle.{self._method}.remote()")


def open_durable_session(router, key: str):
    chosen = router.session_replica(key, None)
    if chosen is None:
        opened = rt.get(client().controller().open_session.remote(
            router.name, key, QUEUE_TIMEOUT_S), timeout=QUEUE_TIMEOUT_S + 5)
        chosen = router.session_replica(key, opened)
    return chosen


async def open_durable_session_async(router, key: str):
    chosen = router.session_replica(key, None)
    if chosen is None:
        opened = await client().controller().open_session.remote(
            router.name, key, QUEUE_TIMEOUT_S)
        chosen = router.session_replica(key, opened)
    return chosen


class Deployment:
    """What ``actorium.deploy`` returns: the deployment's ``handle`` and ``status()``."""

    def __init__(self, name: str, route_prefix: str | None):
        self.name = name
        self.route_prefix = route_prefix
        self.handle = DeploymentHandle(name)

    def status(self) -> dict:
        st = deployments().get(self.name)
        if st is None:
            raise ValueError(f"deployment {self.name!r} no longer exists")
        return st

    def delete(self) -> None:
        delete_deployment(self.name)

    def __repr__(self) -> str:
        return f"Deployment({self.name!r}, route_prefix={self.route_prefix!r})"
