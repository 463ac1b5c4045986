"""Worker crashes, retries and cancellation: errors, never hangs."""
from __future__ import annotations

import os
import signal
import time

import pytest

import actorium
from actorium.exceptions import GetTimeoutError, TaskCancelledError, WorkerCrashedError


def test_worker_exit_gives_worker_crashed_error_after_retries(shared_cluster, tmp_path):
    attempts = tmp_path / "attempts"

    @actorium.remote(max_retries=2)
    def die():
        with open(attempts, "a") as f:
            f.write("x")
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        actorium.get(die.remote(), timeout=60)
    assert attempts.read_text() == "xxx"  # first try + 2 retries


def test_sigkill_of_worker_is_retried_and_succeeds(shared_cluster, tmp_path):
    marker = tmp_path / "killed"

    @actorium.remote(max_retries=1)
    def killed_once():
        if not marker.exists():
            marker.write_text("1")
            os.kill(os.getpid(), signal.SIGKILL)
        return "second try"

    assert actorium.get(killed_once.remote(), timeout=60) == "second try"


def test_segfault_gives_worker_crashed_error(shared_cluster):
    @actorium.remote(max_retries=0)
    def segfault():
        import ctypes
        ctypes.string_at(0)

    with pytest.raises(WorkerCrashedError):
        actorium.get(segfault.remote(), timeout=60)


def test_cluster_keeps_working_after_a_crash(shared_cluster):
    @actorium.remote(max_retries=0)
    def die():
        os._exit(3)

    @actorium.remote
    def ok():
        return "ok"

    with pytest.raises(WorkerCrashedError):
        actorium.get(die.remote(), timeout=60)
    assert actorium.get([ok.remote() for _ in range(20)], timeout=60) == ["ok"] * 20


def test_get_timeout_raises_get_timeout_error(shared_cluster):
    @actorium.remote
    def slow():
        time.sleep(5)

    ref = slow.remote()
    start = time.monotonic()
    with pytest.raises(GetTimeoutError):
        actorium.get(ref, timeout=0.2)
    assert time.monotonic() - start < 2
    actorium.cancel(ref, force=True)


def test_cancel_of_running_task_raises_task_cancelled(shared_cluster):
    @actorium.remote
    def spin():
        while True:
            time.sleep(0.01)

    ref = spin.remote()
    time.sleep(0.3)
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=30)


def test_force_cancel_kills_the_worker_and_is_not_retried(shared_cluster):
    @actorium.remote(max_retries=3)
    def stuck():
        time.sleep(1000)

    ref = stuck.remote()
    time.sleep(0.3)
    actorium.cancel(ref, force=True)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=30)


def test_cancel_of_queued_task_never_runs_it(shared_cluster, tmp_path):
    marker = tmp_path / "ran"

    @actorium.remote(num_cpus=2)
    def hog():
        time.sleep(1)

    @actorium.remote(num_cpus=2)
    def should_not_run():
        marker.write_text("ran")

    first = hog.remote()
    queued = should_not_run.remote()
    actorium.cancel(queued)
    with pytest.raises(TaskCancelledError):
        actorium.get(queued, timeout=30)
    actorium.get(first, timeout=30)
    assert not marker.exists()


def test_infeasible_task_stays_pending_and_warns_once(shared_cluster, capfd):
    @actorium.remote(resources={"unicorn": 1})
    def needs_unicorn():
        return 1

    ref = needs_unicorn.remote()
    ready, not_ready = actorium.wait([ref], timeout=1)
    assert not ready and not_ready == [ref]
    assert "unicorn" in capfd.readouterr().err
    actorium.cancel(ref)


def test_work_of_a_dead_owner_frees_its_workers(shared_cluster):
    @actorium.remote
    def sleep_long():
        time.sleep(300)

    @actorium.remote
    class Submitter:
        def fill_the_node(self):
            self.refs = [sleep_long.remote() for _ in range(4)]  # holds both CPUs
            return os.getpid()

    @actorium.remote
    def ok():
        return "ok"

    submitter = Submitter.remote()
    actorium.get(submitter.fill_the_node.remote())
    time.sleep(0.5)  # the long tasks are running on leased workers now
    actorium.kill(submitter)
    assert actorium.get(ok.remote(), timeout=30) == "ok"
