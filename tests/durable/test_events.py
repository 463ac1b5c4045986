"""Session event logs: append-only, readable from any driver, no duplicate after a
re-run request."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle
import pytest

import actorium
from actorium import durable

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_emit_returns_indexes_and_events_reads_ranges(shared_cluster):
    assert [durable.emit("log-a", i) for i in range(4)] == [0, 1, 2, 3]
    assert durable.events("log-a") == [0, 1, 2, 3]
    assert durable.events("log-a", start=1, end=3) == [1, 2]
    assert durable.events("log-a", start=9) == []
    assert durable.events("never-written") == []


def test_emit_in_a_rerun_request_adds_no_duplicate(shared_cluster, tmp_path):
    marker = str(tmp_path / "m")

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class A:
        def run(self):
            durable.emit("log-b", "before")
            if not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            durable.emit("log-b", "after")
            return "done"

    assert actorium.get(A.remote().run.remote(), timeout=60) == "done"
    assert durable.events("log-b") == ["before", "after"]


def test_bad_event_log_arguments_are_clear_errors(shared_cluster):
    with pytest.raises(TypeError, match="non-empty str"):
        durable.emit("", 1)
    with pytest.raises(ValueError, match="start must be an int"):
        durable.events("k", start=-1)
    with pytest.raises(TypeError, match="ObjectRefs"):
        durable.emit("k", [actorium.put(1)])
