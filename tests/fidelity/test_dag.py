"""Lazy DAGs as Ray documents them: ``f.bind``, ``Actor.bind``, ``node.method.bind``,
``handle.method.bind``, ``InputNode`` (with ``[i]``, ``["k"]`` and ``.attr``),
``MultiOutputNode``, and ``execute`` returning refs."""
from __future__ import annotations

import types

import pytest

import actorium
from actorium.dag import ClassNode, FunctionNode, InputNode, MultiOutputNode


@actorium.remote
def double(x):
    return 2 * x


@actorium.remote
def add(a, b):
    return a + b


@actorium.remote
def total(values):
    return sum(actorium.get(values))


@actorium.remote
class Model:
    def __init__(self, weight):
        self.weight = weight
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.weight * x

    def count(self):
        return self.calls


def test_bind_does_not_run_anything_until_execute(shared_cluster):
    node = double.bind(21)
    assert isinstance(node, FunctionNode)
    assert node.get_args() == (21,)
    ref = node.execute()
    assert isinstance(ref, actorium.ObjectRef)
    assert actorium.get(ref, timeout=30) == 42


def test_upstream_results_feed_downstream_calls(shared_cluster):
    dag = add.bind(double.bind(1), double.bind(2))
    assert actorium.get(dag.execute(), timeout=30) == 6


def test_input_node_as_a_context_manager_takes_execute_argument(shared_cluster):
    with InputNode() as inp:
        dag = add.bind(double.bind(inp), inp)
    assert actorium.get(dag.execute(2), timeout=30) == 6
    assert actorium.get(dag.execute(3), timeout=30) == 9


def test_input_node_index_and_keyword_access(shared_cluster):
    with InputNode() as inp:
        dag = add.bind(inp[0], inp.x)
        by_key = add.bind(inp[1], inp["x"])
    assert actorium.get(dag.execute(1, 5, x=10), timeout=30) == 11
    assert actorium.get(by_key.execute(1, 5, x=10), timeout=30) == 15


def test_input_node_fields_of_a_single_input_object(shared_cluster):
    with InputNode() as inp:
        from_list = add.bind(inp[0], inp[1])
        from_dict = add.bind(inp["a"], inp["b"])
        from_attrs = add.bind(inp.a, inp.b)
    assert actorium.get(from_list.execute([2, 3]), timeout=30) == 5
    assert actorium.get(from_dict.execute({"a": 4, "b": 5}), timeout=30) == 9
    assert actorium.get(from_attrs.execute(types.SimpleNamespace(a=6, b=7)), timeout=30) == 13


def test_missing_input_field_is_a_clear_error(shared_cluster):
    with InputNode() as inp:
        dag = double.bind(inp.nope)
    with pytest.raises(ValueError, match="no field 'nope'"):
        dag.execute(types.SimpleNamespace(a=1))


def test_input_node_without_input_is_an_error(shared_cluster):
    with InputNode() as inp:
        dag = double.bind(inp)
    with pytest.raises(TypeError, match="pass its input"):
        dag.execute()


def test_actor_bind_and_method_bind(shared_cluster):
    with InputNode() as inp:
        model = Model.bind(3)
        dag = model.forward.bind(inp)
    assert isinstance(model, ClassNode)
    assert actorium.get(dag.execute(5), timeout=30) == 15


def test_one_actor_node_is_one_actor_within_an_execute(shared_cluster):
    model = Model.bind(1)
    dag = MultiOutputNode([model.forward.bind(1), model.forward.bind(2), model])
    ref1, ref2, handle = dag.execute()
    assert actorium.get([ref1, ref2], timeout=30) == [1, 2]
    assert actorium.get(handle.count.remote(), timeout=30) == 2


def test_executing_an_actor_node_returns_its_handle(shared_cluster):
    handle = Model.bind(4).execute()
    assert isinstance(handle, actorium.ActorHandle)
    assert actorium.get(handle.forward.remote(2), timeout=30) == 8


def test_live_actor_method_bind_reuses_that_actor(shared_cluster):
    live = Model.remote(10)
    with InputNode() as inp:
        dag = live.forward.bind(inp)
    assert actorium.get([dag.execute(1), dag.execute(2)], timeout=30) == [10, 20]
    assert actorium.get(live.count.remote(), timeout=30) == 2


def test_multi_output_node_returns_a_list_of_refs(shared_cluster):
    with InputNode() as inp:
        dag = MultiOutputNode([double.bind(inp), add.bind(inp, 1)])
    refs = dag.execute(4)
    assert isinstance(refs, list) and all(isinstance(r, actorium.ObjectRef) for r in refs)
    assert actorium.get(refs, timeout=30) == [8, 5]


def test_nodes_nested_in_lists_are_passed_as_refs(shared_cluster):
    dag = total.bind([double.bind(1), double.bind(2)])
    assert actorium.get(dag.execute(), timeout=30) == 6


def test_options_on_bound_function(shared_cluster):
    node = double.options(num_cpus=0.5).bind(3)
    assert actorium.get(node.execute(), timeout=30) == 6
    assert actorium.get(double.bind(4).options(name="renamed").execute(), timeout=30) == 8


def test_a_long_chain_executes(shared_cluster):
    node = double.bind(0)
    for _ in range(300):  # deeper than a recursive walk could go
        node = add.bind(node, 1)
    assert actorium.get(node.execute(), timeout=60) == 300


def test_unknown_method_on_an_actor_node_is_an_error():
    with pytest.raises(AttributeError, match="has no method 'backward'"):
        Model.bind(1).backward


def test_input_node_takes_no_arguments():
    with pytest.raises(ValueError):
        InputNode(1)
