"""The journal's durable store: a full store is a clear error and leaves no half-written
record; records live in the gcs's fsync'd LMDB environment, readable after a reopen."""
from __future__ import annotations

import os

import pytest

import actorium
from actorium import durable
from actorium.exceptions import JournalError
from actorium.gcs.durable_store import DurableStore


@pytest.fixture
def tiny_store_cluster(monkeypatch):
    monkeypatch.setenv("ACTORIUM_DURABLE_STORE_BYTES", str(256 * 1024))
    actorium.init(num_cpus=1)
    try:
        yield
    finally:
        actorium.shutdown()


def test_full_journal_store_is_a_clear_error_and_the_store_stays_usable(tiny_store_cluster):
    @actorium.remote
    def big_then_small():
        try:
            durable.step("big", lambda: b"x" * (1 << 20))
        except JournalError as exc:
            error = str(exc)
        small = durable.step("small", lambda: "fits")
        return error, small

    error, small = actorium.get(big_then_small.remote(), timeout=60)
    assert "full" in error and "ACTORIUM_DURABLE_STORE_BYTES" in error
    assert "nothing was written" in error
    assert small == "fits"


def test_records_survive_closing_and_reopening_the_store(tmp_path):
    store = DurableStore(str(tmp_path / "d"), map_size=1 << 24)
    assert store.journal_begin(b"s", b"r", 0, "a", False)["action"] == "run"
    store.journal_commit(b"s", b"r", 0, True, b"P.", "log")
    store.checkpoint_put(b"s", b"state", [[b"r", [[0, b"P.", 2]]]], [])
    store.event_append("log", b"e1", b"")
    store.close()
    again = DurableStore(str(tmp_path / "d"), map_size=1 << 24)
    try:
        assert again.journal_begin(b"s", b"r", 0, "a", False)["action"] == "replay"
        assert again.checkpoint_get(b"s")["state"] == b"state"
        assert again.reply_get(b"s", b"r") == [[0, b"P.", 2]]
        assert again.event_append("log", b"e2", b"") == 2  # after the step event and e1
        assert len(again.event_range("log", 0, -1)) == 3
    finally:
        again.close()


def test_a_failed_commit_leaves_the_intent_untouched(tmp_path):
    store = DurableStore(str(tmp_path / "d"), map_size=256 * 1024)
    try:
        store.journal_begin(b"s", b"r", 0, "a", False)
        with pytest.raises(Exception, match="full"):
            store.journal_commit(b"s", b"r", 0, True, os.urandom(1 << 20), "")
        (record,) = store.journal_records(b"s", b"r")
        assert record["state"] == "intent" and record["value"] == b""
    finally:
        store.close()


def test_checkpoint_that_does_not_fit_fails_the_call_with_checkpoint_error(tiny_store_cluster):
    from actorium.exceptions import CheckpointError

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class Hoarder:
        def __init__(self):
            self.blob = b""

        def grow(self, n):
            self.blob = os.urandom(n)
            return len(self.blob)

    h = Hoarder.remote()
    with pytest.raises(CheckpointError, match="full"):
        actorium.get(h.grow.remote(1 << 20), timeout=60)
    assert actorium.get(h.grow.remote(10), timeout=60) == 10  # fits again


def test_a_batch_commits_together_and_a_bad_request_fails_alone(tmp_path):
    from actorium.core.wire import protocol as p
    from actorium.gcs.durable_service import DurableService
    service = DurableService(DurableStore(str(tmp_path / "d"), map_size=1 << 24), "")
    try:
        batch = [(b"a", p.JournalBegin(1, b"s", b"r", 0, "x", False, [])),
                 (b"b", p.JournalCommit(2, b"s", b"other", 0, True, b"P.", "")),  # no intent
                 (b"c", p.EventAppend(3, "log", b"e", b"")),
                 (b"d", p.EventRange(4, "log", 0, -1))]
        results = service._execute(batch)
        assert results[0] == (True, {"action": "run", "attempts": 1})
        assert results[1][0] is False and "InvalidStepTransition" in results[1][1]
        assert results[2] == (True, 0)
        assert results[3] == (True, [b"e"])
    finally:
        service.close()


def test_journals_of_requests_older_than_the_window_are_deleted_and_the_log_kept(
        tmp_path, monkeypatch):
    from actorium.gcs import durable_store
    monkeypatch.setattr(durable_store, "JOURNAL_WINDOW", 3)
    store = DurableStore(str(tmp_path / "d"), map_size=1 << 24)
    scope, requests = b"session:k", [b"r%d" % i for i in range(6)]
    try:
        for r in requests:
            store.journal_begin(scope, r, 0, "think", True)
            store.journal_commit(scope, r, 0, True, b"P.", "k")
            store.event_append("k", b"mine", b"e" + scope + b"|" + r + b"\0\0\0\0")
            store.checkpoint_put(scope, b"state", [[r, None]], [])
        assert [len(store.journal_records(scope, r)) for r in requests] == [0, 0, 0, 1, 1, 1]
        assert len(store.event_range("k", 0, -1)) == 12  # steps and emits: all kept
        # the dedup records of old requests are gone, recent ones still deduplicate
        with store.env.begin(db=store.db["event_dedup"]) as txn:
            kept = sorted(bytes(k) for k, _ in txn.cursor())
        assert len(kept) == 6 and not any(b"|r0" in k or b"|r2" in k for k in kept)
        assert store.event_append("k", b"again", b"e" + scope + b"|r5\0\0\0\0") == 11
    finally:
        store.close()


def test_a_repeated_begin_runs_and_an_earlier_attempts_intent_is_ambiguous(tmp_path):
    """A begin sent again after a gcs crash (same attempt token) may run its step; an
    intent left by another attempt (a crashed process) stays ambiguous."""
    store = DurableStore(str(tmp_path / "d"))
    try:
        first = store.journal_begin(b"s", b"r", 0, "book", False, b"attempt-1")
        again = store.journal_begin(b"s", b"r", 0, "book", False, b"attempt-1")
        other = store.journal_begin(b"s", b"r", 0, "book", False, b"attempt-2")
        assert (first["action"], again["action"], other["action"]) == \
            ("run", "run", "ambiguous")
    finally:
        store.close()
