"""Calls in flight on a durable actor whose process dies are re-delivered to the restarted
actor: one result per call, in order, unless max_task_retries says otherwise."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle
import pytest

import actorium
from actorium.exceptions import ActorDiedError

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@actorium.remote(max_restarts=-1, checkpoint="auto")
class Worker:
    def __init__(self):
        self.done = []

    def job(self, i, marker=""):
        if marker and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        self.done.append(i)
        return i

    def finished(self):
        return self.done


def test_calls_in_flight_are_redelivered_in_order_with_one_result_each(shared_cluster, tmp_path):
    w = Worker.remote()
    refs = [w.job.remote(i, str(tmp_path / "m") if i == 2 else "") for i in range(6)]
    assert actorium.get(refs, timeout=60) == list(range(6))
    assert actorium.get(w.finished.remote(), timeout=30) == list(range(6))


def test_durable_actor_with_max_task_retries_zero_fails_the_cut_off_call(shared_cluster, tmp_path):
    w = Worker.options(max_task_retries=0).remote()
    with pytest.raises(ActorDiedError, match="max_task_retries"):
        actorium.get(w.job.remote(1, str(tmp_path / "m")), timeout=60)
    assert actorium.get(w.job.remote(2), timeout=60) == 2
