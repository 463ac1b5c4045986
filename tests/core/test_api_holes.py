"""Small corners of Ray's API that scripts rely on: empty waits, argument checks at the
call site, the built-in actor methods, option type errors, size caps, _system_config."""
from __future__ import annotations

import pytest

import actorium
from actorium.exceptions import ActorDiedError


def test_wait_on_an_empty_list_returns_two_empty_lists():
    assert actorium.wait([]) == ([], [])


@actorium.remote
def fixed(a, b):
    return a + b


@actorium.remote
def variadic(a, *rest):
    return (a, *rest)


@actorium.remote
def keyword_only(a, *, scale, offset=0):
    return a * scale + offset


@actorium.remote
class Signatures:
    def fixed(self, a, b):
        return a + b

    def variadic(self, a, *rest):
        return (a, *rest)

    def keyword_only(self, a, *, scale, offset=0):
        return a * scale + offset

    @staticmethod
    def static(a):
        return a

    @classmethod
    def klass(cls, a):
        return a


@pytest.mark.parametrize("call", [
    lambda: fixed.remote(1),
    lambda: fixed.remote(1, 2, 3),
    lambda: variadic.remote(),
    lambda: keyword_only.remote(1),
    lambda: keyword_only.remote(1, 2),
    lambda: keyword_only.remote(1, scale=2, unknown=3),
], ids=["missing", "extra", "variadic-missing", "kwonly-missing", "kwonly-positional",
        "unknown-keyword"])
def test_a_function_called_with_wrong_arguments_raises_type_error_at_remote(call):
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize("call", [
    lambda a: a.fixed.remote(1),
    lambda a: a.fixed.remote(1, 2, 3),
    lambda a: a.variadic.remote(),
    lambda a: a.keyword_only.remote(1),
    lambda a: a.keyword_only.remote(1, 2),
    lambda a: a.keyword_only.remote(1, scale=2, unknown=3),
    lambda a: a.static.remote(),
    lambda a: a.klass.remote(1, 2),
], ids=["missing", "extra", "variadic-missing", "kwonly-missing", "kwonly-positional",
        "unknown-keyword", "static-missing", "classmethod-extra"])
def test_an_actor_method_called_with_wrong_arguments_raises_type_error_at_remote(
        shared_cluster, call):
    actor = Signatures.remote()
    with pytest.raises(TypeError, match="Signatures"):
        call(actor)


def test_actor_methods_with_every_signature_run_when_called_right(shared_cluster):
    a = Signatures.remote()
    assert actorium.get([a.fixed.remote(1, 2), a.variadic.remote(1, 2, 3),
                         a.keyword_only.remote(2, scale=3, offset=1), a.static.remote(5),
                         a.klass.remote(6)], timeout=60) == [3, (1, 2, 3), 7, 5, 6]


def test_functions_with_every_signature_run_when_called_right(shared_cluster):
    assert actorium.get([fixed.remote(1, 2), variadic.remote(1, 2),
                         keyword_only.remote(2, scale=3)], timeout=60) == [3, (1, 2), 6]


def test_ray_ready_resolves_once_the_actor_is_constructed(shared_cluster):
    assert actorium.get(Signatures.remote().__ray_ready__.remote(), timeout=60) is True


def test_ray_call_runs_a_function_on_the_actor_instance(shared_cluster):
    a = Signatures.remote()
    actorium.get(a.__ray_call__.remote(lambda self: setattr(self, "n", 4)), timeout=60)
    assert actorium.get(a.__ray_call__.remote(lambda self, k: self.n * k, 10),
                        timeout=60) == 40


def test_ray_terminate_runs_after_earlier_calls_and_later_calls_fail(shared_cluster):
    a = Signatures.remote()
    earlier = [a.fixed.remote(i, 1) for i in range(5)]
    a.__ray_terminate__.remote()
    assert actorium.get(earlier, timeout=60) == [1, 2, 3, 4, 5]
    with pytest.raises(ActorDiedError):
        actorium.get(a.fixed.remote(1, 1), timeout=60)


@pytest.mark.parametrize("kind, option, value", [
    ("task", "num_cpus", "1"), ("task", "max_retries", "3"), ("task", "resources", [1]),
    ("task", "name", 5), ("actor", "max_restarts", "1"), ("actor", "namespace", 3),
    ("actor", "get_if_exists", "yes"), ("actor", "max_concurrency", 2.5)])
def test_a_wrongly_typed_option_is_a_type_error_naming_it(kind, option, value):
    with pytest.raises(TypeError, match=f"'{option}'"):
        (fixed if kind == "task" else Signatures).options(**{option: value})


def test_a_remote_function_over_95_mib_pickled_is_too_large(shared_cluster):
    big = b"x" * (96 * 1024 * 1024)

    @actorium.remote
    def capture():
        return len(big)

    with pytest.raises(ValueError, match="too large"):
        capture.remote()


def test_an_actor_class_over_95_mib_pickled_is_too_large(shared_cluster):
    big = b"x" * (96 * 1024 * 1024)

    @actorium.remote
    class Capture:
        def size(self):
            return len(big)

    with pytest.raises(ValueError, match="too large"):
        Capture.remote()


def test_a_remote_function_over_10_mib_pickled_warns_and_runs(shared_cluster):
    big = b"x" * (11 * 1024 * 1024)

    @actorium.remote
    def capture():
        return len(big)

    with pytest.warns(UserWarning, match="very large"):
        ref = capture.remote()
    assert actorium.get(ref, timeout=60) == len(big)


def test_system_config_when_connecting_to_a_cluster_is_a_value_error():
    with pytest.raises(ValueError, match="_system_config"):
        actorium.init(address="127.0.0.1:1", _system_config={"no_such_key": 1})
