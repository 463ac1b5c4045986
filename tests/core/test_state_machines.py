"""The lifecycles at the owner: a call's TaskState (owner/task_state.py) and an actor's
state as its caller follows it (owner/actor_submitter.py). Transitions outside the tables
raise with the key's history."""
from __future__ import annotations

import pytest

import actorium
from actorium.core.owner import actor_submitter as acs
from actorium.core.owner.task_spec import TaskSpec
from actorium.core.owner.task_state import (FINISHED, PUSHED, QUEUED, RESOLVING,
                                            InvalidTransition, TaskTable)


def _spec() -> TaskSpec:
    return TaskSpec(b"t" * 16, "task", "f", b"", [], 1, [b"o" * 20], "job")


def test_a_task_is_live_from_submission_to_finish_and_pushed_only_on_a_worker():
    table, spec = TaskTable(), _spec()
    table.transition(spec, RESOLVING, "submitted")
    table.transition(spec, QUEUED, "arguments ready")
    assert table.live == {spec.task_id: spec} and table.pushed == {}
    table.transition(spec, PUSHED, "pushed")
    assert table.pushed == {spec.task_id: spec}
    table.transition(spec, QUEUED, "retry: its worker died")
    assert table.pushed == {} and spec.task_id in table.live
    table.transition(spec, PUSHED, "pushed")
    table.transition(spec, FINISHED, "replied")
    assert table.live == {} and table.pushed == {}
    table.transition(spec, RESOLVING, "run again to rebuild a lost result")
    assert table.live == {spec.task_id: spec}


def test_an_unknown_task_transition_raises_with_the_story():
    table, spec = TaskTable(), _spec()
    table.transition(spec, RESOLVING, "submitted")
    refused = r"RESOLVING -> PUSHED \(pushed\) .*story: \['RESOLVING'\]"
    with pytest.raises(InvalidTransition, match=refused):
        table.transition(spec, PUSHED, "pushed")
    table.transition(spec, FINISHED, "cancelled")
    with pytest.raises(InvalidTransition, match="FINISHED -> FINISHED"):
        table.transition(spec, FINISHED, "replied twice")


def test_a_dead_actor_never_comes_back_at_its_caller():
    states = list(acs.ActorState)
    for old in states:
        for new in states:
            allowed = (old, new) in acs.TRANSITIONS
            assert allowed == (old is not acs.DEAD or new is acs.DEAD), (old, new)


def test_every_gcs_state_maps_to_a_caller_state():
    from actorium.gcs import actor_table
    gcs_states = {actor_table.DEPENDENCIES_UNREADY, actor_table.PENDING_CREATION,
                  actor_table.ALIVE, actor_table.RESTARTING, actor_table.DEAD}
    assert set(acs._FROM_GCS) == gcs_states


@actorium.remote
def one():
    return 1


@actorium.remote
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


def test_finished_calls_leave_the_owners_tables(shared_cluster):
    c = Counter.remote()
    assert actorium.get([one.remote() for _ in range(20)]) == [1] * 20
    assert actorium.get([c.inc.remote() for _ in range(20)])[-1] == 20
    cw = actorium.core.api._worker()
    assert cw.tasks.pushed == {} and cw.tasks.live == {}  # the creation too: it is alive
    assert cw.actors.actors[c.actor_id].state is acs.ALIVE
