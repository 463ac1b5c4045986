"""Scheduling across nodes: spillback, custom resources, actor placement, SPREAD and
node affinity."""
from __future__ import annotations

import time

import pytest

import actorium
from actorium.exceptions import TaskUnschedulableError
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from mn_helpers import node_of


@actorium.remote
def slow_node_of(seconds: float):
    time.sleep(seconds)
    return actorium.get_runtime_context().get_node_id()


def test_work_the_local_node_cannot_hold_spills_to_other_nodes(make_cluster):
    c = make_cluster(head_cpus=1)
    n2 = c.add_node(num_cpus=2)
    ran_on = set(actorium.get([slow_node_of.remote(0.3) for _ in range(6)]))
    assert ran_on == {c.head_node.node_id, n2.node_id}


def test_infeasible_locally_runs_where_the_custom_resource_is(make_cluster):
    c = make_cluster(head_cpus=1)
    c.add_node(num_cpus=1)
    gpu_like = c.add_node(num_cpus=1, resources={"browser": 2})
    refs = [node_of.options(resources={"browser": 1}).remote() for _ in range(4)]
    assert set(actorium.get(refs)) == {gpu_like.node_id}


def test_work_waits_for_a_node_with_the_resource_to_join(make_cluster):
    c = make_cluster(head_cpus=1)
    ref = node_of.options(resources={"late": 1}).remote()
    ready, _ = actorium.wait([ref], timeout=0.5)
    assert not ready
    late = c.add_node(num_cpus=1, resources={"late": 1})
    assert actorium.get(ref, timeout=30) == late.node_id


def test_actor_is_placed_on_a_node_with_its_resources(make_cluster):
    c = make_cluster(head_cpus=1)
    c.add_node(num_cpus=1)
    big = c.add_node(num_cpus=4, resources={"memory_heavy": 1})

    @actorium.remote(num_cpus=2, resources={"memory_heavy": 1})
    class Holder:
        def where(self):
            return actorium.get_runtime_context().get_node_id()
    assert actorium.get(Holder.remote().where.remote()) == big.node_id


def test_spread_uses_every_node(make_cluster):
    c = make_cluster(head_cpus=2)
    n2 = c.add_node(num_cpus=2)
    n3 = c.add_node(num_cpus=2)
    refs = [slow_node_of.options(scheduling_strategy="SPREAD").remote(0.2) for _ in range(6)]
    assert set(actorium.get(refs)) == {c.head_node.node_id, n2.node_id, n3.node_id}


def test_spread_actors_land_on_different_nodes(make_cluster):
    c = make_cluster(head_cpus=1)
    c.add_node(num_cpus=1)
    c.add_node(num_cpus=1)

    @actorium.remote(num_cpus=0, scheduling_strategy="SPREAD")
    class Where:
        def node(self):
            return actorium.get_runtime_context().get_node_id()
    actors = [Where.remote() for _ in range(3)]
    assert len(set(actorium.get([a.node.remote() for a in actors]))) == 3


def test_node_affinity_runs_tasks_and_actors_on_the_named_node(make_cluster):
    c = make_cluster(head_cpus=2)
    n2 = c.add_node(num_cpus=1)
    strategy = NodeAffinitySchedulingStrategy(n2.node_id, soft=False)
    refs = [node_of.options(scheduling_strategy=strategy).remote() for _ in range(5)]
    assert set(actorium.get(refs)) == {n2.node_id}

    @actorium.remote(num_cpus=0)
    class Where:
        def node(self):
            return actorium.get_runtime_context().get_node_id()
    actor = Where.options(scheduling_strategy=strategy).remote()
    assert actorium.get(actor.node.remote()) == n2.node_id


def test_hard_affinity_to_a_dead_node_fails_the_task(make_cluster):
    c = make_cluster(head_cpus=1)
    n2 = c.add_node(num_cpus=1)
    c.remove_node(n2, allow_graceful=False)
    c.wait_for_nodes()
    strategy = NodeAffinitySchedulingStrategy(n2.node_id, soft=False)
    with pytest.raises(TaskUnschedulableError, match=n2.node_id):
        actorium.get(node_of.options(scheduling_strategy=strategy).remote(), timeout=30)


def test_soft_affinity_to_a_dead_node_runs_elsewhere(make_cluster):
    c = make_cluster(head_cpus=1)
    n2 = c.add_node(num_cpus=1)
    c.remove_node(n2, allow_graceful=False)
    c.wait_for_nodes()
    strategy = NodeAffinitySchedulingStrategy(n2.node_id, soft=True)
    assert actorium.get(node_of.options(scheduling_strategy=strategy).remote(),
                        timeout=30) == c.head_node.node_id


def test_bad_scheduling_strategy_is_refused_at_options_time():
    with pytest.raises(ValueError, match="scheduling_strategy"):
        node_of.options(scheduling_strategy="EVERYWHERE")
    with pytest.raises(TypeError):
        NodeAffinitySchedulingStrategy("abc", soft="yes")


def test_output_of_a_task_on_another_node_reaches_the_driver(make_cluster, capsys):
    c = make_cluster(head_cpus=1)
    n2 = c.add_node(num_cpus=1)

    @actorium.remote(num_cpus=0)
    def shout():
        print("hello from the other node")
        return actorium.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(n2.node_id, soft=False)
    assert actorium.get(shout.options(scheduling_strategy=strategy).remote()) == n2.node_id
    deadline = time.monotonic() + 10
    seen = ""
    while "hello from the other node" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen += capsys.readouterr().out
    assert "hello from the other node" in seen
