"""A call's arguments are packed once by the caller and unpacked once by the worker
(core/owner/arguments.py): refs become resolved slots, large values go through the store."""
from __future__ import annotations

import numpy as np

import actorium
from actorium.core.objects import serialization
from actorium.core.owner import arguments


@actorium.remote
def echo(*args, **kwargs):
    return args, kwargs


@actorium.remote
class Keeper:
    def __init__(self, *args, **kwargs):
        self.got = (args, kwargs)

    def get(self):
        return self.got

    def echo(self, *args, **kwargs):
        return args, kwargs


def _unpacked(args, kwargs):
    packed = arguments.pack(args, kwargs, put_serialized=None)
    assert packed.slots == []
    return arguments.unpack(packed.blob, [], materialize=None)


def test_plain_arguments_travel_as_one_pickle():
    packed = arguments.pack((1, "two", None), {"k": 3.0}, put_serialized=None)
    assert packed.blob[:1] == b"P"
    assert _unpacked((1, "two", None), {"k": 3.0}) == ((1, "two", None), {"k": 3.0})


def test_other_small_arguments_travel_inline_each_serialized_once():
    args, kwargs = ([1, 2], {"a": (3,)}), {"arr": np.arange(4)}
    packed = arguments.pack(args, kwargs, put_serialized=None)
    assert packed.blob[:1] == b"A"
    got_args, got_kwargs = _unpacked(args, kwargs)
    assert got_args == args
    assert got_kwargs.keys() == {"arr"} and (got_kwargs["arr"] == np.arange(4)).all()


def test_no_arguments_is_the_empty_blob():
    assert arguments.pack((), {}, put_serialized=None).blob == arguments.EMPTY


def test_mixed_arguments_reach_a_task(shared_cluster):
    big = np.arange(serialization.INLINE_MAX, dtype=np.uint8)  # too large to go inline
    ref = actorium.put("from the store")
    args, kwargs = actorium.get(echo.remote(1, ref, big, [ref], name="x", other=ref))
    assert args[0] == 1 and args[1] == "from the store" and (args[2] == big).all()
    assert isinstance(args[3][0], actorium.ObjectRef)  # nested refs stay refs
    assert actorium.get(args[3][0]) == "from the store"
    assert kwargs == {"name": "x", "other": "from the store"}


def test_mixed_arguments_reach_an_actor_constructor_and_its_methods(shared_cluster):
    big = b"x" * (serialization.INLINE_MAX + 1)
    ref = actorium.put(7)
    keeper = Keeper.remote(ref, big, flag=True)
    assert actorium.get(keeper.get.remote()) == ((7, big), {"flag": True})
    assert actorium.get(keeper.echo.remote(big, ref, k=ref)) == ((big, 7), {"k": 7})


def test_a_restarted_actor_is_built_again_from_its_large_arguments(shared_cluster):
    big = b"y" * (serialization.INLINE_MAX + 1)
    keeper = Keeper.options(max_restarts=1, max_task_retries=-1).remote(big)
    assert actorium.get(keeper.get.remote()) == ((big,), {})
    actorium.kill(keeper, no_restart=False)
    assert actorium.get(keeper.get.remote(), timeout=60) == ((big,), {})
