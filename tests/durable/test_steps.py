"""durable.step: journaled before and after it runs, replayed after a kill -9 of the actor's
process, at most once for non-idempotent steps, with clear errors on bad input."""
from __future__ import annotations

import os
import signal
import sys

import cloudpickle
import pytest

import actorium
from actorium import durable
from actorium.exceptions import AmbiguousStep, JournalError

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def crash_once(marker: str) -> None:
    """SIGKILL the calling process the first time this marker is seen."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def effect(log: str, tag: str, crash_marker: str = "") -> str:
    """A side effect the test can count: one line per real execution."""
    with open(log, "a") as f:
        f.write(tag + "\n")
        f.flush()
    if crash_marker:
        crash_once(crash_marker)
    return f"{tag}-done"


def lines(path) -> list[str]:
    return open(path).read().split() if os.path.exists(path) else []


@actorium.remote(max_restarts=-1, checkpoint="auto")
class Agent:
    def __init__(self, log: str):
        self.log = log
        self.handled = 0

    def two_steps(self, crash_between: str = "", crash_in_b: str = "", crash_after_b: str = "",
                  idempotent: bool = False):
        self.handled += 1
        a = durable.step("a", effect, self.log, "a")
        if crash_between:
            crash_once(crash_between)
        try:
            b = durable.step("b", effect, self.log, "b", crash_in_b, idempotent=idempotent)
        except AmbiguousStep as exc:
            b = f"ambiguous:{exc.idempotency_key}"
        if crash_after_b:
            crash_once(crash_after_b)
        return a, b, self.handled


def test_kill_between_two_steps_replays_the_first_and_runs_the_second(shared_cluster, tmp_path):
    log = str(tmp_path / "log")
    agent = Agent.remote(log)
    out = actorium.get(agent.two_steps.remote(crash_between=str(tmp_path / "m")), timeout=60)
    assert out == ("a-done", "b-done", 1)
    assert lines(log) == ["a", "b"]


def test_kill_during_non_idempotent_step_raises_ambiguous_step_and_never_reruns(
        shared_cluster, tmp_path):
    log = str(tmp_path / "log")
    agent = Agent.remote(log)
    a, b, _ = actorium.get(agent.two_steps.remote(crash_in_b=str(tmp_path / "m")), timeout=60)
    assert a == "a-done"
    assert b.startswith("ambiguous:")
    assert lines(log) == ["a", "b"]


def test_kill_during_idempotent_step_reruns_it_with_the_same_key(shared_cluster, tmp_path):
    keys = str(tmp_path / "keys")

    def keyed():
        with open(keys, "a") as f:
            f.write(durable.idempotency_key() + "\n")
        crash_once(str(tmp_path / "m"))
        return "booked"

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class A:
        def run(self):
            return durable.step("book", keyed, idempotent=True)

    assert actorium.get(A.remote().run.remote(), timeout=60) == "booked"
    seen = lines(keys)
    assert len(seen) == 2 and seen[0] == seen[1]


def test_kill_right_after_a_step_commits_replays_its_result(shared_cluster, tmp_path):
    log = str(tmp_path / "log")
    agent = Agent.remote(log)
    out = actorium.get(agent.two_steps.remote(crash_after_b=str(tmp_path / "m")), timeout=60)
    assert out == ("a-done", "b-done", 1)
    assert lines(log) == ["a", "b"]


def test_a_step_exception_is_journaled_and_reraised_on_replay(shared_cluster, tmp_path):
    log = str(tmp_path / "log")

    def failing():
        with open(log, "a") as f:
            f.write("ran\n")
        raise KeyError("no seat")

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class A:
        def run(self):
            try:
                durable.step("fail", failing)
            except KeyError as exc:
                caught = repr(exc)
            crash_once(str(tmp_path / "m"))
            return caught

    assert actorium.get(A.remote().run.remote(), timeout=60) == "KeyError('no seat')"
    assert lines(log) == ["ran"]


def test_step_in_a_task_is_replayed_when_the_task_is_retried(shared_cluster, tmp_path):
    log = str(tmp_path / "log")

    @actorium.remote(max_retries=1)
    def task():
        first = durable.step("first", effect, log, "first")
        crash_once(str(tmp_path / "m"))
        return first

    assert actorium.get(task.remote(), timeout=60) == "first-done"
    assert lines(log) == ["first"]


def test_step_called_in_the_driver_is_a_clear_error(shared_cluster):
    with pytest.raises(RuntimeError, match="inside an actor method or a remote task"):
        durable.step("x", print)


def test_idempotency_key_outside_a_step_function_is_a_clear_error(shared_cluster):
    @actorium.remote
    def task():
        try:
            durable.idempotency_key()
        except RuntimeError as exc:
            return str(exc)

    assert "inside the function of a durable.step" in actorium.get(task.remote(), timeout=60)


def test_unserializable_step_result_is_a_clear_error_recorded_as_failed(shared_cluster, tmp_path):
    log = str(tmp_path / "log")

    def make_lock():
        with open(log, "a") as f:
            f.write("ran\n")
        import threading
        return threading.Lock()

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class A:
        def run(self):
            try:
                durable.step("lock", make_lock)
            except TypeError as exc:
                error = str(exc)
            crash_once(str(tmp_path / "m"))  # the answer comes from the re-run: a replay
            return error

    error = actorium.get(A.remote().run.remote(), timeout=60)
    assert "cannot be journaled" in error and "lock" in error
    assert lines(log) == ["ran"]


def test_step_result_holding_an_object_ref_is_rejected(shared_cluster):
    @actorium.remote
    def task():
        try:
            durable.step("ref", lambda: [actorium.put(1)])
        except TypeError as exc:
            return str(exc)

    assert "ObjectRefs" in actorium.get(task.remote(), timeout=60)


def test_different_step_at_a_journaled_position_is_a_journal_error(shared_cluster, tmp_path):
    marker = str(tmp_path / "m")

    @actorium.remote(max_restarts=-1, checkpoint="auto")
    class A:
        def run(self):
            name = "first-run" if not os.path.exists(marker) else "second-run"
            try:
                durable.step(name, lambda: 1)
            except JournalError as exc:
                return str(exc)
            crash_once(marker)
            return "no error"

    assert "must be deterministic" in actorium.get(A.remote().run.remote(), timeout=60)


def test_step_arguments_are_validated(shared_cluster):
    @actorium.remote
    def task():
        out = []
        for args in (("", print), ("x", 3)):
            try:
                durable.step(*args)
            except TypeError as exc:
                out.append(str(exc))
        return out

    assert len(actorium.get(task.remote(), timeout=60)) == 2
