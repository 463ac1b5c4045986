"""Generators as Ray has them: a generator task streams by default, ``num_returns=
"dynamic"`` gives one ref whose value is a DynamicObjectRefGenerator, and an int
``num_returns`` takes exactly that many yielded values."""
from __future__ import annotations

import pytest

import actorium


@actorium.remote
def count_to(n):
    for i in range(n):
        yield i * 10


@actorium.remote(num_returns="dynamic")
def chunks(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


@actorium.remote(num_returns="dynamic")
def fails_after(n):
    for i in range(n):
        yield i
    raise ValueError("generator broke")


@actorium.remote
def total_of(gen):
    return sum(sum(actorium.get(ref)) for ref in gen)


def test_generator_task_streams_without_num_returns(shared_cluster):
    gen = count_to.remote(4)
    assert isinstance(gen, actorium.ObjectRefGenerator)
    assert [actorium.get(ref, timeout=30) for ref in gen] == [0, 10, 20, 30]


def test_generator_task_options_keep_streaming_by_default(shared_cluster):
    gen = count_to.options(num_cpus=0.5).remote(2)
    assert [actorium.get(ref, timeout=30) for ref in gen] == [0, 10]


def test_dynamic_returns_one_ref_whose_value_is_a_dynamic_generator(shared_cluster):
    ref = chunks.remote(list(range(10)), 3)
    assert isinstance(ref, actorium.ObjectRef)
    gen = actorium.get(ref, timeout=30)
    assert isinstance(gen, actorium.DynamicObjectRefGenerator)
    assert len(gen) == 4
    assert [actorium.get(r, timeout=30) for r in gen] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_dynamic_generator_can_be_iterated_twice(shared_cluster):
    gen = actorium.get(chunks.remote([1, 2, 3], 1), timeout=30)
    assert actorium.get(list(gen), timeout=30) == actorium.get(list(gen), timeout=30) == [[1], [2], [3]]


def test_dynamic_generator_passed_to_another_task(shared_cluster):
    assert actorium.get(total_of.remote(chunks.remote(list(range(10)), 4)), timeout=30) == 45


def test_dynamic_generator_keeps_its_items_after_the_ref_is_dropped(shared_cluster):
    gen = actorium.get(chunks.remote(["a" * 200_000, "b" * 200_000], 1), timeout=30)
    refs = list(gen)
    del gen
    assert [len(v[0]) for v in actorium.get(refs, timeout=30)] == [200_000, 200_000]


def test_dynamic_generator_error_raises_on_get(shared_cluster):
    with pytest.raises(ValueError, match="generator broke"):
        actorium.get(fails_after.options(max_retries=0).remote(2), timeout=30)


def test_dynamic_on_a_plain_function_is_rejected(shared_cluster):
    def plain():
        return 1
    with pytest.raises(TypeError, match="generator function"):
        actorium.remote(num_returns="dynamic")(plain)


def test_generator_with_int_num_returns_returns_that_many_refs(shared_cluster):
    a, b, c = count_to.options(num_returns=3).remote(3)
    assert actorium.get([a, b, c], timeout=30) == [0, 10, 20]


def test_generator_yielding_the_wrong_count_for_num_returns_fails(shared_cluster):
    a, b = count_to.options(num_returns=2, max_retries=0).remote(3)
    with pytest.raises(ValueError, match="yielded 3 values"):
        actorium.get(a, timeout=30)


@actorium.remote
class Splitter:
    @actorium.method(num_returns="dynamic")
    def split(self, text):
        yield from text.split()

    async def words(self, text):
        for w in text.split():
            yield w


def test_actor_method_with_dynamic_returns(shared_cluster):
    s = Splitter.remote()
    gen = actorium.get(s.split.remote("a b c"), timeout=30)
    assert isinstance(gen, actorium.DynamicObjectRefGenerator)
    assert actorium.get(list(gen), timeout=30) == ["a", "b", "c"]


def test_async_actor_generator_streams_by_default(shared_cluster):
    s = Splitter.remote()
    assert [actorium.get(r, timeout=30) for r in s.words.remote("x y")] == ["x", "y"]
