"""Extension points of the core: ways of running work that live in the layers above it.

The core runs plain tasks and actors and knows nothing else by import. Running a call
in a sandbox (``actorium.isolation``) or an actor with a journal and checkpoints
(``actorium.durable``) is provided by those packages, which register here when they are
imported. ``actorium/__init__.py`` imports them, and Python runs it before any module of
the package, so every process that runs actorium code has them registered: drivers, the
node, and the workers the zygote forks from its pre-imported interpreter.

The options choose:

* ``isolation=<name>`` on a function or actor class selects a registered ``Isolation``,
  which submits the call its own way (the sandbox: through a hosting task or actor);
* an ``ActorRuntime`` claims actors by their options (durable: ``checkpoint=`` or a
  session) and then hosts them in their worker; its name and configuration travel in
  ``ActorInit.runtime``.
"""
from __future__ import annotations

from typing import Protocol


class Isolation(Protocol):
    """Runs remote functions and actors of ``isolation=<name>`` its own way."""

    def submit_function(self, function, args: tuple, kwargs: dict):
        """``RemoteFunction.remote`` for this isolation: return what ``.remote`` returns."""

    def create_actor(self, actor_class, args: tuple, kwargs: dict):
        """``ActorClass.remote`` for this isolation: return the ActorHandle."""


class HostedActor(Protocol):
    """An actor instance as an ActorRuntime runs it, in the worker."""

    def restore(self) -> None:
        """Prepare the fresh instance before the actor is reported ready."""

    def call(self, msg) -> None:
        """Run one ActorCall and reply to its owner (replaces the plain executor's)."""

    def chunk(self, index: int, item):
        """Each item a streaming method yields, before it is sent."""


class ActorRuntime(Protocol):
    name: str

    def check_options(self, options) -> None:
        """Raise ValueError for ActorOptions this runtime cannot accept."""

    def configure(self, actor_class, actor_id: bytes, session: str) -> dict:
        """The configuration of an actor this runtime claims, or {} for one it does not."""

    def host(self, executor, config: dict) -> HostedActor:
        """In the actor's worker, after the instance is built: take it over."""


_isolations: dict[str, Isolation] = {}
_actor_runtimes: dict[str, ActorRuntime] = {}


def register_isolation(name: str, isolation: Isolation) -> None:
    _isolations[name] = isolation


def isolation_names() -> list[str]:
    return sorted(_isolations)


def isolation(name: str) -> Isolation:
    return _lookup(_isolations, name, f"isolation={name!r} is not available here", ValueError)


def register_actor_runtime(runtime: ActorRuntime) -> None:
    _actor_runtimes[runtime.name] = runtime


def actor_runtimes() -> list[ActorRuntime]:
    return list(_actor_runtimes.values())


def actor_runtime(name: str) -> ActorRuntime:
    return _lookup(_actor_runtimes, name,
                   f"actor runtime {name!r} is not registered in this process", RuntimeError)


def _lookup(registry: dict, name: str, missing: str, error: type):
    try:
        return registry[name]
    except KeyError:
        raise error(f"{missing}; registered: "
                    f"{', '.join(map(repr, sorted(registry))) or 'none'}") from None
