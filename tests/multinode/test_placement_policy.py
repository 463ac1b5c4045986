"""The node-choosing policy and the membership table, without processes."""
from __future__ import annotations

import pytest

from actorium.gcs import membership as mb
from actorium.gcs.storage import Storage
from actorium.raylet.spillback import LOCAL, REJECT, SPILL, ClusterView
from actorium.scheduling import placement

VIEW = {"a": ({"CPU": 2.0}, {"CPU": 0.0}),
        "b": ({"CPU": 2.0}, {"CPU": 1.0}),
        "c": ({"CPU": 4.0, "gpu": 1.0}, {"CPU": 4.0, "gpu": 1.0})}


def test_default_stays_local_while_it_fits():
    view = dict(VIEW, a=({"CPU": 2.0}, {"CPU": 1.0}))
    assert placement.choose({"CPU": 1.0}, None, view, "a") == "a"


def test_default_goes_to_the_least_loaded_node_that_fits_now():
    assert placement.choose({"CPU": 1.0}, None, VIEW, "a") == "c"


def test_default_queues_locally_when_nothing_fits_now_but_local_could():
    assert placement.choose({"CPU": 2.0}, None, dict(VIEW, c=({"CPU": 1}, {})), "a") == "a"


def test_infeasible_everywhere_is_none():
    assert placement.choose({"tpu": 1.0}, None, VIEW, "a") is None


def test_spread_rotates_over_fitting_nodes():
    picks = {placement.choose({"CPU": 1.0}, "SPREAD", VIEW, "a", turn) for turn in range(4)}
    assert picks == {"b", "c"}


def test_hard_affinity_to_a_missing_node_is_unschedulable():
    with pytest.raises(placement.Unschedulable, match="zz"):
        placement.choose({}, ["NODE_AFFINITY", "zz", False], VIEW, "a")


def test_soft_affinity_to_a_missing_node_falls_back_to_default():
    assert placement.choose({"CPU": 1.0}, ["NODE_AFFINITY", "zz", True], VIEW, "a") == "c"


def test_cluster_view_subtracts_each_spill_until_the_next_view():
    view = ClusterView("a")
    view.update([["b", "tcp://b:1", {"CPU": 1.0}, {"CPU": 1.0}]])
    assert view.route({"CPU": 1.0}, None, {"CPU": 1.0}, {"CPU": 0.0})[:2] == (SPILL, "b")
    assert view.route({"CPU": 1.0}, None, {"CPU": 1.0}, {"CPU": 0.0}) == (LOCAL,)
    assert view.route({}, ["NODE_AFFINITY", "x", False], {}, {})[0] == REJECT


def test_membership_declares_a_silent_node_dead_once_and_persists_it(tmp_path):
    storage = Storage(str(tmp_path / "gcs"))
    members = mb.Membership(storage, timeout=1.0)
    node = mb.NodeRecord("n1", "tcp://x:1", {"CPU": 1.0}, "/dev/shm/x", 1, b"id")
    members.register(node)
    assert members.expire(now=node.last_seen + 0.5) == []
    assert members.expire(now=node.last_seen + 1.5) == [node]
    assert members.expire(now=node.last_seen + 9) == []
    assert dict(storage.items("nodes"))[b"n1"]["state"] == mb.DEAD
    with pytest.raises(mb.InvalidTransition):
        mb.transition(node, mb.DEAD, "again")
    reloaded = mb.Membership(storage, timeout=1.0)
    assert not reloaded.nodes["n1"].alive
    storage.close()


def test_multi_node_api_lives_where_ray_users_look_for_it():
    import actorium
    import actorium.cluster_utils
    from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    assert actorium.util.scheduling_strategies.NodeAffinitySchedulingStrategy \
        is NodeAffinitySchedulingStrategy
    assert "util" in actorium.__all__
    assert {"Cluster", "ClusterNode"} <= set(actorium.cluster_utils.__all__)
    assert issubclass(actorium.exceptions.TaskUnschedulableError,
                      actorium.exceptions.ActoriumError)
    strategy = NodeAffinitySchedulingStrategy("abc", soft=True)
    assert placement.normalize(strategy) == ["NODE_AFFINITY", "abc", True]
    assert placement.normalize("SPREAD") == "SPREAD" and placement.normalize("DEFAULT") is None


def test_the_gcs_never_times_out_the_head_it_runs_with(tmp_path):
    storage = Storage(str(tmp_path / "gcs"))
    members = mb.Membership(storage, timeout=1.0)
    head = mb.NodeRecord("h", "ipc://h", {"CPU": 1.0}, "/dev/shm/h", 1, b"h", head=True)
    members.register(head)
    assert members.expire(now=head.last_seen + 60) == []
    # After a restart the previous head is an ordinary record: it must heartbeat or go.
    again = mb.Membership(storage, timeout=1.0)
    assert again.expire(now=again.nodes["h"].last_seen + 2) == [again.nodes["h"]]
    storage.close()
