"""Failover when a node dies: tasks retried elsewhere, actors restarted elsewhere,
detached named actors back under their name, lost objects rebuilt or reported.
Each test adds its own victim node to one shared cluster (conftest.Shared) and kills it."""
from __future__ import annotations

import time

import numpy as np
import pytest

import actorium
from actorium.exceptions import ActorDiedError, ObjectLostError, OwnerDiedError
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from mn_helpers import node_of
from tests_helpers import wait_until


def on(node, soft=False):
    return NodeAffinitySchedulingStrategy(node.node_id, soft=soft)


@actorium.remote(num_cpus=0)
class Where:
    def __init__(self):
        self.calls = 0

    def node(self):
        self.calls += 1
        return actorium.get_runtime_context().get_node_id()


@actorium.remote
def square_slowly(i: int) -> int:
    time.sleep(0.01)
    return i * i


@actorium.remote
def square_where(i: int):
    time.sleep(0.01)
    return i * i, actorium.get_runtime_context().get_node_id()


def test_fan_out_of_1000_retryable_tasks_survives_a_node_kill(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=2)
    # the first 200 prefer the victim (soft: their retries may run anywhere), so it has
    # work when it dies however the scheduler would have spread the rest
    prefer_victim = square_where.options(max_retries=5, scheduling_strategy=on(victim, soft=True))
    anywhere = square_where.options(max_retries=5)
    refs = [(prefer_victim if i < 200 else anywhere).remote(i) for i in range(1000)]

    def victim_has_worked():
        ready = actorium.wait(refs, num_returns=len(refs), timeout=0)[0]
        return len(ready) >= 50 and any(actorium.get(r)[1] == victim.node_id for r in ready)
    assert wait_until(victim_has_worked, 60)
    c.remove_node(victim, allow_graceful=False)
    results = actorium.get(refs, timeout=180)
    assert [r[0] for r in results] == [i * i for i in range(1000)]
    ran_on = [r[1] for r in results]
    assert victim.node_id in ran_on  # it had work when it was killed...
    assert ran_on[-1] != victim.node_id  # ...and the rest finished elsewhere


def test_tasks_running_on_a_killed_node_are_retried_elsewhere(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=2)
    refs = [square_slowly.options(max_retries=2).remote(i) for i in range(40)]
    assert wait_until(lambda: actorium.wait(refs, num_returns=1, timeout=0)[0], 30)
    c.remove_node(victim, allow_graceful=False)
    assert actorium.get(refs, timeout=60) == [i * i for i in range(40)]


def test_actor_with_a_restart_answers_again_from_another_node(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    actor = Where.options(max_restarts=1, max_task_retries=1,
                          scheduling_strategy=on(victim, soft=True)).remote()
    assert actorium.get(actor.node.remote()) == victim.node_id
    c.remove_node(victim, allow_graceful=False)
    assert actorium.get(actor.node.remote(), timeout=30) in shared.live_ids()


def test_actor_without_restarts_is_dead_after_its_node_dies(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    actor = Where.options(scheduling_strategy=on(victim)).remote()
    actorium.get(actor.node.remote())
    c.remove_node(victim, allow_graceful=False)
    with pytest.raises(ActorDiedError, match="node"):
        actorium.get(actor.node.remote(), timeout=30)


def test_detached_named_actor_comes_back_under_its_name(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    Where.options(name="keeper", lifetime="detached", max_restarts=-1,
                  scheduling_strategy=on(victim, soft=True)).remote()
    assert actorium.get(actorium.get_actor("keeper").node.remote()) == victim.node_id
    c.remove_node(victim, allow_graceful=False)
    c.wait_for_nodes()
    found = actorium.get_actor("keeper")
    assert actorium.get(found.node.remote(), timeout=30) in shared.live_ids()


@actorium.remote(num_cpus=0)
def big(fill: float):
    return np.full(1 << 18, fill)  # 2 MiB: stored, not inline


def test_lost_object_is_rebuilt_from_lineage(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    ref = big.options(scheduling_strategy=on(victim, soft=True), max_retries=2).remote(7.0)
    actorium.wait([ref], timeout=30, fetch_local=False)
    c.remove_node(victim, allow_graceful=False)
    c.wait_for_nodes()
    assert float(actorium.get(ref, timeout=60)[0]) == 7.0


def test_lost_object_without_retries_raises_object_lost(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    ref = big.options(scheduling_strategy=on(victim), max_retries=0).remote(1.0)
    actorium.wait([ref], timeout=30, fetch_local=False)
    c.remove_node(victim, allow_graceful=False)
    c.wait_for_nodes()
    with pytest.raises(ObjectLostError):
        actorium.get(ref, timeout=30)


@actorium.remote(num_cpus=0)
class Owner:
    def make(self):
        return [actorium.put(np.ones(1 << 18))]


def test_object_whose_owner_died_raises_owner_died(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=1)
    owner = Owner.options(scheduling_strategy=on(victim)).remote()
    [inner] = actorium.get(owner.make.remote())
    c.remove_node(victim, allow_graceful=False)
    c.wait_for_nodes()
    with pytest.raises(OwnerDiedError):
        actorium.get(inner, timeout=30)


def test_work_submitted_after_a_node_death_avoids_the_dead_node(shared):
    c = shared.cluster
    victim = c.add_node(num_cpus=4)
    c.remove_node(victim, allow_graceful=False)
    c.wait_for_nodes()
    ran_on = set(actorium.get([node_of.remote() for _ in range(10)], timeout=30))
    assert victim.node_id not in ran_on and ran_on <= shared.live_ids()
