"""Streaming methods of durable actors: after a kill -9 mid-stream the re-delivered call
resumes the stream; the caller gets every chunk once, in order, and no step runs twice."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle

import actorium
from actorium import durable

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def token(log: str, i: int) -> str:
    with open(log, "a") as f:
        f.write(f"{i}\n")
    return f"tok{i}"


class Writer:
    def __init__(self, log):
        self.log = log

    def write(self, n, marker):
        for i in range(n):
            yield durable.step(f"token-{i}", token, self.log, i)
            if i == 2 and not os.path.exists(marker):
                open(marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)


def test_stream_resumes_after_a_crash_without_duplicated_chunks(shared_cluster, tmp_path):
    log = str(tmp_path / "log")
    s = actorium.session("stream-1", Writer, log)
    gen = s.write.options(num_returns="streaming").remote(6, str(tmp_path / "m"))
    chunks = [actorium.get(ref, timeout=60) for ref in gen]
    assert chunks == [f"tok{i}" for i in range(6)]
    assert open(log).read().split() == [str(i) for i in range(6)]
    steps = [e["name"] for e in durable.events("stream-1") if e["kind"] == "step"]
    assert steps == [f"token-{i}" for i in range(6)]  # chunks are journaled, not logged
