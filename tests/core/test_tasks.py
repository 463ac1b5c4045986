"""Remote functions: submission, results, arguments and errors flowing through them."""
from __future__ import annotations

import pytest

import actorium
from actorium.exceptions import TaskError


@actorium.remote
def square(x):
    return x * x


@actorium.remote
def add(a, b=0):
    return a + b


@actorium.remote
def fail(msg):
    raise ValueError(msg)


@actorium.remote(num_returns=2)
def pair(x):
    return x, x + 1


def test_task_results_come_back_in_order(shared_cluster):
    assert actorium.get([square.remote(i) for i in range(10)]) == [i * i for i in range(10)]


def test_keyword_arguments_reach_the_task(shared_cluster):
    assert actorium.get(add.remote(1, b=2)) == 3


def test_top_level_ref_arguments_are_resolved_to_values(shared_cluster):
    assert actorium.get(add.remote(square.remote(3), b=actorium.put(1))) == 10


def test_nested_refs_stay_refs(shared_cluster):
    @actorium.remote
    def first(refs):
        assert isinstance(refs[0], actorium.ObjectRef)
        return actorium.get(refs[0])

    assert actorium.get(first.remote([actorium.put(41)])) == 41


def test_multiple_returns_give_one_ref_each(shared_cluster):
    a, b = pair.remote(1)
    assert actorium.get([a, b]) == [1, 2]


def test_zero_returns_give_none(shared_cluster):
    @actorium.remote(num_returns=0)
    def nothing():
        pass

    assert nothing.remote() is None


def test_remote_exception_is_task_error_and_original_class(shared_cluster):
    with pytest.raises(ValueError) as info:
        actorium.get(fail.remote("boom"))
    assert isinstance(info.value, TaskError)
    assert "boom" in str(info.value)
    assert "Traceback" in str(info.value) and "fail" in str(info.value)


def test_errors_flow_through_dependencies(shared_cluster):
    with pytest.raises(ValueError, match="upstream"):
        actorium.get(square.remote(fail.remote("upstream")))


def test_nested_tasks_can_submit_and_wait(shared_cluster):
    @actorium.remote
    def fan_out(n):
        return sum(actorium.get([square.remote(i) for i in range(n)]))

    assert actorium.get([fan_out.remote(5) for _ in range(4)]) == [30] * 4


def test_large_arguments_are_passed_through_the_object_store(shared_cluster):
    payload = b"x" * (1 << 20)

    @actorium.remote
    def size(b):
        return len(b)

    assert actorium.get(size.remote(payload)) == 1 << 20


def test_large_results_come_back(shared_cluster):
    @actorium.remote
    def big(n):
        return b"y" * n

    assert len(actorium.get(big.remote(5 << 20))) == 5 << 20


def test_retry_exceptions_retries_until_success(shared_cluster, tmp_path):
    marker = tmp_path / "attempts"

    @actorium.remote(max_retries=3, retry_exceptions=True)
    def flaky():
        n = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(n + 1))
        if n < 2:
            raise RuntimeError("not yet")
        return n

    assert actorium.get(flaky.remote()) == 2


def test_exceptions_are_not_retried_by_default(shared_cluster, tmp_path):
    marker = tmp_path / "attempts"

    @actorium.remote
    def once():
        marker.write_text(marker.read_text() + "x" if marker.exists() else "x")
        raise RuntimeError("no retry")

    with pytest.raises(RuntimeError):
        actorium.get(once.remote())
    assert marker.read_text() == "x"
