"""Where the durable store lives: ACTORIUM_DURABLE_STORE_DIR keeps sessions across a
crash of the whole cluster; a store that cannot be opened fails durable calls clearly
and nothing else."""
from __future__ import annotations

import os
import signal
import sys
import time

import cloudpickle
import pytest

import actorium
from actorium import durable
from actorium.exceptions import JournalError

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Notes:
    def __init__(self):
        self.notes = []

    def add(self, text):
        stamp = durable.step("stamp", lambda: f"#{len(self.notes)}")
        self.notes.append(f"{stamp} {text}")
        return list(self.notes)


def crash_cluster() -> None:
    """SIGKILL the embedded head's whole process group: node, gcs, workers."""
    from actorium.core import api
    os.killpg(api._session.proc.pid, signal.SIGKILL)
    api._session.proc.wait(timeout=10)


def test_a_session_survives_a_crash_of_the_whole_cluster(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTORIUM_DURABLE_STORE_DIR", str(tmp_path / "store"))
    actorium.init(num_cpus=1)
    try:
        s = actorium.session("notes", Notes)
        actorium.get(s.add.remote("first"), timeout=30)
        crash_cluster()
    finally:
        actorium.shutdown()
    actorium.init(num_cpus=1)
    try:
        s = actorium.session("notes", Notes)
        assert actorium.get(s.add.remote("second"), timeout=60) == ["#0 first", "#1 second"]
        kinds = [e["kind"] for e in durable.events("notes")]
        assert kinds == ["request", "step", "result"] * 2
    finally:
        actorium.shutdown()


def test_an_unopenable_store_fails_durable_calls_with_the_reason(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ACTORIUM_DURABLE_STORE_DIR", str(blocker / "store"))
    actorium.init(num_cpus=1)
    try:
        @actorium.remote
        def plain():
            return "works"

        @actorium.remote
        def journaled():
            try:
                durable.step("x", lambda: 1)
            except JournalError as exc:
                return str(exc)

        assert actorium.get(plain.remote(), timeout=30) == "works"
        error = actorium.get(journaled.remote(), timeout=30)
        assert "unavailable" in error and str(blocker) in error
        with pytest.raises(JournalError, match="unavailable"):
            durable.events("any")
    finally:
        actorium.shutdown()


class Booker:
    def __init__(self, path):
        self.path = path
        self.calls = 0

    def book(self, go_file):
        self.calls += 1
        ticket = durable.step("book", _book_once, self.path)
        open(self.path + ".committed", "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(go_file) and time.monotonic() < deadline:
            time.sleep(0.01)  # the test crashes the whole cluster here, the first time
        return ticket, self.calls


def _book_once(path: str) -> str:
    ticket = f"T-{os.urandom(3).hex()}"
    with open(path, "a") as f:
        f.write(ticket + "\n")
    return ticket


def test_a_request_id_sent_again_after_a_cluster_crash_continues_that_request(
        monkeypatch, tmp_path):
    monkeypatch.setenv("ACTORIUM_DURABLE_STORE_DIR", str(tmp_path / "store"))
    path, go = str(tmp_path / "bookings"), str(tmp_path / "go")
    actorium.init(num_cpus=1)
    try:
        s = actorium.session("booker", Booker, path)
        s.book.options(request_id="order-17").remote(go)
        from tests_helpers import wait_until
        assert wait_until(lambda: os.path.exists(path + ".committed"), timeout=30)
        crash_cluster()  # mid-request: booked and journaled, never answered
    finally:
        actorium.shutdown()
    open(go, "w").close()
    actorium.init(num_cpus=1)
    try:
        s = actorium.session("booker", Booker, path)
        ticket, calls = actorium.get(s.book.options(request_id="order-17").remote(go),
                                     timeout=60)
        assert open(path).read().split() == [ticket]  # booked once, answered with it
        again = actorium.get(s.book.options(request_id="order-17").remote(go), timeout=60)
        assert again == (ticket, calls)  # a finished request sent again: not run again
        assert actorium.get(s.book.remote(go), timeout=60)[1] == calls + 1
    finally:
        actorium.shutdown()


def test_request_id_must_be_a_non_empty_str(shared_cluster):
    s = actorium.session("booker-args", Booker, "/nonexistent")
    with pytest.raises(TypeError, match="request_id"):
        s.book.options(request_id="")
    with pytest.raises(TypeError, match="request_id"):
        s.book.options(request_id=17)
