"""The lifecycle of one journaled step, as pure functions over its record.

A step record is a dict ``{"state", "name", "attempts", "ok", "value"}``; a missing
record is the state NONE. The store (actorium/gcs/durable_store.py) reads the record,
asks ``begin`` or ``commit`` what to do, and writes the new record in the same LMDB
write transaction, so the decision and the write are one atomic, fsync'd step.

Invariants (checked by tests/durable/test_journal_property.py):
- a COMMITTED record never changes again (the first outcome wins);
- a step is only run when its record is NONE (first run) or INTENT and idempotent
  (re-run with the same idempotency key); a non-idempotent INTENT is never re-run;
- a record's name never changes: a different name at the same position is a mismatch.
"""
from __future__ import annotations

from enum import Enum


class StepState(str, Enum):
    NONE = "none"
    INTENT = "intent"
    COMMITTED = "committed"


class Action(str, Enum):
    RUN = "run"              # run fn now (first time, or an idempotent re-run)
    REPLAY = "replay"        # return/raise the committed outcome without running
    AMBIGUOUS = "ambiguous"  # an earlier attempt may or may not have had its effect
    MISMATCH = "mismatch"    # this position held a step of another name


class InvalidStepTransition(RuntimeError):
    """A commit for a step that never began: a bug in the caller, never user input."""


def state_of(record: dict | None) -> StepState:
    return StepState.NONE if record is None else StepState(record["state"])


def begin(record: dict | None, name: str, idempotent: bool,
          attempt: bytes = b"") -> tuple[Action, dict | None]:
    """Decide what ``step(name)`` does given the stored record. Returns the action and
    the record to store (None: leave the store unchanged).

    ``attempt`` is the caller's random token for this begin: the same token on an INTENT
    means the caller sent its begin again because the answer was lost (a gcs crash), so
    it has not run ``fn`` yet and may run it; a crashed attempt's token is never sent
    again, so its intent stays ambiguous."""
    state = state_of(record)
    if state is StepState.NONE:
        return Action.RUN, {"state": StepState.INTENT.value, "name": name, "attempts": 1,
                            "ok": None, "value": b"", "attempt": attempt}
    if record["name"] != name:
        return Action.MISMATCH, None
    if state is StepState.COMMITTED:
        return Action.REPLAY, None
    if attempt and record.get("attempt") == attempt:
        return Action.RUN, None
    if idempotent:
        return Action.RUN, dict(record, attempts=record["attempts"] + 1, attempt=attempt)
    return Action.AMBIGUOUS, None


def commit(record: dict | None, ok: bool, value: bytes) -> dict | None:
    """The record after committing an outcome (None: unchanged, the first commit won)."""
    state = state_of(record)
    if state is StepState.INTENT:
        return dict(record, state=StepState.COMMITTED.value, ok=bool(ok), value=value)
    if state is StepState.COMMITTED:
        return None
    raise InvalidStepTransition("commit of a step whose intent was never recorded")
