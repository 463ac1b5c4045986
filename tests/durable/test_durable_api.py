"""The public surface of durable sessions: what is exported, and that its exceptions
cross processes intact."""
from __future__ import annotations

import pickle

import actorium
from actorium import durable, exceptions


def test_durable_exports_exactly_its_public_names():
    assert sorted(durable.__all__) == ["AmbiguousStep", "CheckpointError", "JournalError",
                                       "SessionHandle", "emit", "events", "idempotency_key",
                                       "session", "step"]
    for name in durable.__all__:
        assert getattr(durable, name) is not None
    assert actorium.session is durable.session
    assert "session" in actorium.__all__ and "durable" in actorium.__all__


def test_durable_exceptions_live_in_the_exception_tree():
    for name in ("AmbiguousStep", "JournalError", "CheckpointError"):
        assert name in exceptions.__all__
        assert issubclass(getattr(exceptions, name), exceptions.ActoriumError)
        assert getattr(durable, name) is getattr(exceptions, name)


def test_ambiguous_step_pickles_with_its_fields():
    err = exceptions.AmbiguousStep("msg", "book", 3, "abc.3", 1)
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.step, back.seq, back.idempotency_key, back.attempts) == \
        ("msg", "book", 3, "abc.3", 1)
