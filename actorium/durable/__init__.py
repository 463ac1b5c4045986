"""Durable agent sessions: journaled steps, checkpointed actors, session event logs.

    from actorium import durable
    plan = durable.step("think", call_model, prompt)          # journaled, replayed after a crash
    ticket = durable.step("book", book_flight, plan, idempotent=False)   # runs at most once
    durable.emit("user-42", {"said": "hello"}); durable.events("user-42", start=0)
    agent = actorium.session("user-42", BookingAgent, "user-42")   # one durable actor per key
    agent.handle.options(request_id="order-17").remote(...)        # re-sendable request

What is guaranteed under which failure is written down in docs/durability.md.
"""
from actorium.durable import actor_runtime  # noqa: F401  (registers durable actors with the core)
from actorium.durable.eventlog import emit, events
from actorium.durable.journal import idempotency_key, step
from actorium.durable.sessions import SessionHandle, session
from actorium.exceptions import AmbiguousStep, CheckpointError, JournalError

__all__ = ["AmbiguousStep", "CheckpointError", "JournalError", "SessionHandle", "emit",
           "events", "idempotency_key", "session", "step"]
