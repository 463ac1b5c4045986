"""The lifecycle of a call at its owner: a task, an actor call, or an actor's creation.

States, the allowed transitions, and the one function that moves a call between them
(``TaskTable.transition``). A transition not in ``TRANSITIONS`` raises with the call's
story, so a lifecycle bug is loud. Only the owner's I/O thread calls it.

::

    (submitted) -> RESOLVING -> QUEUED -> PUSHED -> FINISHED
                       |          |  ^       |
                       +----------+--|-------+--> FINISHED   (failed argument, cancelled,
                                     |                        unschedulable, actor dead)
                                     +-- PUSHED              (retried: worker or actor died,
                                                              retryable error)
    FINISHED -> RESOLVING   (run again to rebuild a lost result from lineage)

An actor's creation goes RESOLVING -> QUEUED -> PUSHED (sent to the gcs) and finishes
when the caller hears the actor is alive or dead.
"""
from __future__ import annotations

import enum

from actorium.core import stats


class TaskState(enum.Enum):
    RESOLVING = "resolving"  # waiting for its ref arguments (ordered actor calls: and for
                             # the calls before it)
    QUEUED = "queued"        # ready; waiting for a leased worker, or for its actor
    PUSHED = "pushed"        # on a worker (or the gcs, for a creation), no reply yet
    FINISHED = "finished"    # its results or its error are recorded


RESOLVING, QUEUED, PUSHED, FINISHED = TaskState

# The allowed next states of each state (None: not submitted yet). Kept as tuples on the
# members, so checking a transition on the per-call path compares identities only.
_NEXT = {
    None: (RESOLVING,),
    RESOLVING: (QUEUED, FINISHED),
    QUEUED: (PUSHED, FINISHED),
    PUSHED: (FINISHED, QUEUED),
    FINISHED: (RESOLVING,),
}
for _state, _nexts in _NEXT.items():
    if _state is not None:
        _state.nexts = _nexts
_NEW = _NEXT[None]
TRANSITIONS = frozenset((old, new) for old, nexts in _NEXT.items() for new in nexts)


class InvalidTransition(RuntimeError):
    pass


class TaskTable:
    """The calls this owner submitted and has not finished (``live``), and those of them
    on a worker now (``pushed``); both follow from the states, so they cannot disagree."""

    def __init__(self):
        self.live: dict[bytes, object] = {}
        self.pushed: dict[bytes, object] = {}

    def transition(self, spec, new: TaskState, why: str) -> None:
        """Move ``spec`` to ``new``; its story keeps each state it went through (``why``
        is only reported, for the transition that is refused)."""
        old = spec.state
        if new not in (_NEW if old is None else old.nexts):
            raise InvalidTransition(
                f"{spec.kind} {spec.name} ({spec.task_id.hex()}): "
                f"{old.name if old else 'new'} -> {new.name} ({why}) is not allowed; "
                f"story: {[state.name for state in spec.story]}")
        spec.state = new
        spec.story.append(new)
        if old is None:
            stats.count(stats.submitted, spec.name)
        task_id = spec.task_id
        if new is PUSHED:
            self.pushed[task_id] = spec
        elif old is PUSHED:
            del self.pushed[task_id]
        if new is FINISHED:
            del self.live[task_id]
        elif old is None or old is FINISHED:
            self.live[task_id] = spec
