"""Actor lifecycle in the gcs: states, the allowed transitions, and restart policy.

Every state change goes through ``ActorTable.transition``; a transition not in
``TRANSITIONS`` raises with the actor's history, so a lifecycle bug is loud.
"""
from __future__ import annotations

import time

DEPENDENCIES_UNREADY = "DEPENDENCIES_UNREADY"
PENDING_CREATION = "PENDING_CREATION"
ALIVE = "ALIVE"
RESTARTING = "RESTARTING"
DEAD = "DEAD"

TRANSITIONS = {
    (DEPENDENCIES_UNREADY, PENDING_CREATION),
    (DEPENDENCIES_UNREADY, DEAD),
    (PENDING_CREATION, ALIVE),
    (PENDING_CREATION, RESTARTING),
    (PENDING_CREATION, DEAD),
    (ALIVE, RESTARTING),
    (ALIVE, DEAD),
    (RESTARTING, PENDING_CREATION),
    (RESTARTING, DEAD),
}


class InvalidTransition(RuntimeError):
    pass


class ActorRecord:
    """What the gcs knows about one actor. ``init`` is the encoded ActorInit, kept so
    the actor can be restarted without its owner."""

    def __init__(self, actor_id: bytes, name: str, namespace: str, detached: bool,
                 max_restarts: int, shape: dict, owner_job: str, meta: bytes,
                 strategy=None, auto: bool = False):
        self.actor_id = actor_id
        self.name = name
        self.namespace = namespace
        self.detached = detached
        self.max_restarts = max_restarts
        self.shape = shape
        self.owner_job = owner_job
        self.meta = meta
        self.strategy = strategy  # wire form, see scheduling/placement.py
        self.auto = auto  # resources="auto": right-sized by its raylet
        self.outgrown = ""  # why it no longer fits its node (gcs/elastic.py)
        self.move_to = ""  # the node a durable outgrown actor is being moved to
        self.state = DEPENDENCIES_UNREADY
        self.init = b""
        self.task_addr = ""
        self.owner_addr = ""
        self.node_id = ""
        self.pid = 0
        self.restarts = 0
        self.no_restart = False
        self.reason = ""
        self.error = b""
        self.history: list = [(DEPENDENCIES_UNREADY, time.time(), "registered")]

    def to_record(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "history"}

    @classmethod
    def from_record(cls, rec: dict) -> "ActorRecord":
        a = cls.__new__(cls)
        a.strategy = None
        a.auto, a.outgrown, a.move_to = False, "", ""
        a.__dict__.update(rec)
        a.history = [(a.state, time.time(), "loaded")]
        return a

    def info(self) -> dict:
        return {"actor_id": self.actor_id, "name": self.name, "namespace": self.namespace,
                "state": self.state, "meta": self.meta, "node_id": self.node_id,
                "pid": self.pid, "restarts": self.restarts, "detached": self.detached,
                "job": self.owner_job, "reason": self.reason, "auto": self.auto,
                "outgrown": self.outgrown}

    def can_restart(self) -> bool:
        if self.no_restart:
            return False
        return self.max_restarts == -1 or self.restarts < self.max_restarts


def transition(actor: ActorRecord, new_state: str, why: str) -> None:
    if (actor.state, new_state) not in TRANSITIONS:
        raise InvalidTransition(
            f"actor {actor.actor_id.hex()}: {actor.state} -> {new_state} ({why}) is not "
            f"allowed; history: {actor.history}")
    actor.state = new_state
    actor.history.append((new_state, time.time(), why))
