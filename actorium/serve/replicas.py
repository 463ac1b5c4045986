"""The controller's record of one deployment: its replicas and their lifecycle.

A replica (a pool replica, or with ``durable=True`` the actor of one session) moves
STARTING -> RUNNING -> DRAINING -> gone, one method per transition; anything else
raises with the replica's history. Only RUNNING replicas are in the table the routers
route by. A replica leaves the table (DRAINING) at a table version ``v``; it is stopped
once every live router has applied a version >= ``v`` and reports no request in
flight to it — so a request never reaches a stopped replica, and none is cut off.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from actorium.serve.config import DeploymentConfig
from actorium.serve.policy import LoadHistory

STARTING, RUNNING, DRAINING = "STARTING", "RUNNING", "DRAINING"


@dataclass(slots=True)
class Replica:
    rid: str
    handle: object            # ActorHandle
    session: str = ""         # durable session key; "" for a pool replica
    state: str = STARTING
    started: float = field(default_factory=time.monotonic)
    removed_version: int = 0
    drain_since: float = 0.0
    history: list = field(default_factory=lambda: [STARTING])

    def _move(self, allowed_from: str, to: str) -> None:
        if self.state != allowed_from:
            raise RuntimeError(f"replica {self.rid}: no transition {self.state} -> {to} "
                               f"(history: {' -> '.join(self.history)})")
        self.state = to
        self.history.append(to)

    def running(self) -> None:
        self._move(STARTING, RUNNING)

    def draining(self, version: int) -> None:
        self._move(RUNNING, DRAINING)
        self.removed_version = version
        self.drain_since = time.monotonic()


def new_rid(name: str) -> str:
    """Unique across controller restarts (replicas it adopts keep theirs)."""
    return f"{name}#{uuid.uuid4().hex[:10]}"


@dataclass(slots=True)
class DeploymentState:
    config: DeploymentConfig
    actor_cls: object         # ActorClass, options for replicas applied
    init_args: tuple
    init_kwargs: dict
    methods: dict
    class_name: str
    signatures: dict = field(default_factory=dict)
    # Versions start at the clock in ms, so a restarted controller's tables are newer
    # than any a router saw before (bumps are far fewer than 1000 per second).
    version: int = field(default_factory=lambda: int(time.time() * 1000))
    replicas: dict = field(default_factory=dict)      # rid -> Replica
    pins: dict = field(default_factory=dict)          # session -> rid (non-durable)
    session_used: dict = field(default_factory=dict)  # durable session -> last use
    history: LoadHistory = field(default_factory=LoadHistory)
    deleting: bool = False
    error: str = ""
    failures: int = 0
    last_failure: float = 0.0
    table_cache: dict | None = None
    pins_dirty: bool = False
    pins_sent: float = 0.0

    @property
    def name(self) -> str:
        return self.config.name

    def bump(self) -> None:
        self.version += 1
        self.table_cache = None

    def pool(self, *states) -> list:
        return [r for r in self.replicas.values() if not r.session and r.state in states]

    def session_replica(self, key: str):
        for r in self.replicas.values():
            if r.session == key and r.state in (STARTING, RUNNING):
                return r
        return None

    def table(self) -> dict:
        """What routers route by (cached per version)."""
        if self.table_cache is None:
            running = [r for r in self.replicas.values() if r.state == RUNNING]
            live = {r.rid for r in running}
            self.table_cache = {
                "v": self.version, "name": self.name, "config": self.config.to_dict(),
                "methods": self.methods, "class_name": self.class_name,
                "signatures": self.signatures,
                "deleted": self.deleting,
                "error": self.error if not running else "",
                "replicas": [] if self.deleting else
                [[r.rid, r.handle] for r in running if not r.session],
                "sessions": {} if self.deleting else
                {r.session: [r.rid, r.handle] for r in running if r.session},
                "pins": {k: v for k, v in self.pins.items() if v in live}}
        return self.table_cache
