"""Bad input gets a clear error and the cluster keeps working."""
from __future__ import annotations

import threading

import pytest

import actorium


@actorium.remote
def echo(x):
    return x


def test_unpicklable_argument_names_the_value(shared_cluster):
    lock = threading.Lock()
    with pytest.raises(TypeError, match="lock"):
        echo.remote(lock)
    assert actorium.get(echo.remote(1)) == 1


def test_unpicklable_return_value_is_a_clear_error(shared_cluster):
    @actorium.remote
    def make_lock():
        return threading.Lock()

    with pytest.raises(TypeError, match="lock"):
        actorium.get(make_lock.remote())
    assert actorium.get(echo.remote(2)) == 2


def test_unpicklable_put_is_a_type_error(shared_cluster):
    with pytest.raises(TypeError, match="lock"):
        actorium.put(threading.Lock())


def test_calling_a_remote_function_directly_is_refused(shared_cluster):
    with pytest.raises(TypeError, match=r"echo.remote\(\)"):
        echo(1)


def test_remote_on_a_non_callable_is_refused():
    with pytest.raises(TypeError):
        actorium.remote(42)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError, match="num_cpus"):
        actorium.remote(num_cpu=1)(lambda: None)
    with pytest.raises(ValueError, match="max_retries"):
        echo.options(max_retry=1)


def test_wrong_option_type_is_refused():
    with pytest.raises((TypeError, ValueError)):
        echo.options(num_cpus="two")
    with pytest.raises((TypeError, ValueError)):
        echo.options(max_retries=1.5)


def test_actor_options_are_validated():
    @actorium.remote
    class A:
        pass

    with pytest.raises(ValueError, match="lifetime"):
        A.options(lifetime="forever")


def test_wrong_arguments_fail_at_call_time(shared_cluster):
    with pytest.raises(TypeError):
        echo.remote(1, 2, 3)


def test_get_on_a_non_ref_is_a_clear_error(shared_cluster):
    with pytest.raises(TypeError, match="ObjectRef"):
        actorium.get(42)
    with pytest.raises(TypeError, match="ObjectRef"):
        actorium.get([actorium.put(1), "nope"])


def test_put_of_a_ref_is_refused(shared_cluster):
    with pytest.raises(TypeError):
        actorium.put(actorium.put(1))


def test_init_twice_is_an_error_unless_ignored(shared_cluster):
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        actorium.init()
    info = actorium.init(ignore_reinit_error=True)
    assert info["job_id"]


def test_streaming_option_on_a_plain_function_is_refused():
    with pytest.raises(TypeError, match="generator"):
        echo.options(num_returns="streaming")
