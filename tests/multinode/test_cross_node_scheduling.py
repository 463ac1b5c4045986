"""Scheduling across nodes: spillback, custom resources, actor placement, SPREAD and
node affinity. One shared cluster (conftest.Shared): head 1 CPU, a 2 CPUs, b 1 CPU
with browser=2 and memory_heavy=1."""
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


@actorium.remote(num_cpus=0)
class Where:
    def node(self):
        return actorium.get_runtime_context().get_node_id()


def test_work_the_local_node_cannot_hold_spills_to_other_nodes(shared):
    ran_on = set(actorium.get([slow_node_of.remote(0.3) for _ in range(8)]))
    assert shared.head.node_id in ran_on and len(ran_on) >= 2


def test_infeasible_locally_runs_where_the_custom_resource_is(shared):
    refs = [node_of.options(resources={"browser": 1}).remote() for _ in range(4)]
    assert set(actorium.get(refs)) == {shared.b.node_id}


def test_work_waits_for_a_node_with_the_resource_to_join(shared):
    ref = node_of.options(resources={"late": 1}).remote()
    ready, _ = actorium.wait([ref], timeout=0.5)
    assert not ready
    late = shared.cluster.add_node(num_cpus=1, resources={"late": 1})
    assert actorium.get(ref, timeout=30) == late.node_id


def test_actor_is_placed_on_a_node_with_its_resources(shared):
    holder = Where.options(num_cpus=1, resources={"memory_heavy": 1}).remote()
    assert actorium.get(holder.node.remote()) == shared.b.node_id
    actorium.kill(holder)


def test_spread_uses_every_node(shared):
    # num_cpus=0: every node always fits, so the round robin alone decides.
    live = shared.live_ids()
    refs = [node_of.options(scheduling_strategy="SPREAD").remote() for _ in range(2 * len(live))]
    assert set(actorium.get(refs)) == live


def test_spread_actors_land_on_different_nodes(shared):
    actors = [Where.options(scheduling_strategy="SPREAD").remote() for _ in range(3)]
    assert len(set(actorium.get([a.node.remote() for a in actors]))) == 3


def test_node_affinity_runs_tasks_and_actors_on_the_named_node(shared):
    strategy = NodeAffinitySchedulingStrategy(shared.a.node_id, soft=False)
    refs = [node_of.options(scheduling_strategy=strategy).remote() for _ in range(5)]
    assert set(actorium.get(refs)) == {shared.a.node_id}
    actor = Where.options(scheduling_strategy=strategy).remote()
    assert actorium.get(actor.node.remote()) == shared.a.node_id


def test_hard_affinity_to_a_dead_node_fails_the_task(shared):
    doomed = shared.cluster.add_node(num_cpus=1)
    shared.cluster.remove_node(doomed, allow_graceful=False)
    shared.cluster.wait_for_nodes()
    strategy = NodeAffinitySchedulingStrategy(doomed.node_id, soft=False)
    with pytest.raises(TaskUnschedulableError, match=doomed.node_id):
        actorium.get(node_of.options(scheduling_strategy=strategy).remote(), timeout=30)


def test_soft_affinity_to_a_dead_node_runs_elsewhere(shared):
    doomed = shared.cluster.add_node(num_cpus=1)
    shared.cluster.remove_node(doomed, allow_graceful=False)
    shared.cluster.wait_for_nodes()
    strategy = NodeAffinitySchedulingStrategy(doomed.node_id, soft=True)
    assert actorium.get(node_of.options(scheduling_strategy=strategy).remote(),
                        timeout=30) in shared.live_ids()


def test_bad_scheduling_strategy_is_refused_at_options_time():
    with pytest.raises(ValueError, match="scheduling_strategy"):
        node_of.options(scheduling_strategy="EVERYWHERE")
    with pytest.raises(TypeError):
        NodeAffinitySchedulingStrategy("abc", soft="yes")


def test_output_of_a_task_on_another_node_reaches_the_driver(shared, capsys):
    @actorium.remote(num_cpus=0)
    def shout():
        print("hello from the other node")
        return actorium.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(shared.a.node_id, soft=False)
    assert actorium.get(shout.options(scheduling_strategy=strategy).remote()) == shared.a.node_id
    deadline = time.monotonic() + 10
    seen = ""
    while "hello from the other node" not in seen and time.monotonic() < deadline:
        time.sleep(0.05)
        seen += capsys.readouterr().out
    assert "hello from the other node" in seen


def test_cancel_of_a_task_running_on_another_node_ends_get(shared):
    from actorium.exceptions import TaskCancelledError

    @actorium.remote
    def report_then_sleep():
        return actorium.get_runtime_context().get_node_id(), time.sleep(60)

    where = NodeAffinitySchedulingStrategy(shared.a.node_id, soft=False)
    ref = report_then_sleep.options(scheduling_strategy=where).remote()
    time.sleep(0.5)  # let it start there (a cancel before that must also end the wait)
    start = time.monotonic()
    actorium.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorium.get(ref, timeout=15)
    assert time.monotonic() - start < 10
    # node a's CPUs are free again at once
    again = slow_node_of.options(scheduling_strategy=where)
    assert actorium.get([again.remote(0), again.remote(0)], timeout=15) == [shared.a.node_id] * 2
