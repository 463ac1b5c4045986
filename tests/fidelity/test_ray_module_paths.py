"""The module paths Ray code imports, the runtime context it reads, and the options
Ray accepts that actorium accepts too (unknown ones are still refused)."""
from __future__ import annotations

import pytest

import actorium
from actorium.exceptions import ActorDiedError


def test_ray_actor_module_names_the_actor_api():
    from actorium.actor import ActorClass, ActorHandle, exit_actor
    assert ActorClass is actorium.ActorClass and ActorHandle is actorium.ActorHandle
    assert callable(exit_actor)


def test_ray_remote_function_module_names_remote_function():
    from actorium.remote_function import RemoteFunction
    assert RemoteFunction is actorium.RemoteFunction


def test_ray_runtime_context_module_gives_the_context(shared_cluster):
    from actorium.runtime_context import RuntimeContext, get_runtime_context
    ctx = get_runtime_context()
    assert isinstance(ctx, RuntimeContext)
    assert ctx.get_job_id() == actorium.get_runtime_context().get_job_id()


def test_driver_context_has_node_and_job_but_no_task_or_actor(shared_cluster):
    from actorium.runtime_context import get_runtime_context
    ctx = get_runtime_context()
    node_ids = {n["NodeID"] for n in actorium.nodes()}
    assert ctx.get_node_id() in node_ids
    assert ctx.node_id.hex() == ctx.get_node_id() == ctx.node_id
    assert ctx.job_id.hex() == ctx.get_job_id()
    assert ctx.get_task_id() is None and ctx.get_actor_id() is None
    assert ctx.task_id is None and ctx.actor_id is None


@actorium.remote
def context_in_task():
    ctx = actorium.runtime_context.get_runtime_context()
    return (ctx.get_task_id(), ctx.task_id.hex(), ctx.get_actor_id(), ctx.get_node_id(),
            ctx.get_job_id(), ctx.get_assigned_resources())


def test_task_context_names_the_running_task(shared_cluster):
    task_id, task_hex, actor_id, node_id, job_id, resources = actorium.get(
        context_in_task.remote(), timeout=30)
    assert task_id and task_id == task_hex and actor_id is None
    assert node_id == actorium.get_runtime_context().get_node_id()
    assert job_id == actorium.get_runtime_context().get_job_id()
    assert isinstance(resources, dict)


@actorium.remote(max_restarts=1)
class Reporter:
    def context(self):
        ctx = actorium.runtime_context.get_runtime_context()
        return ctx.get_actor_id(), ctx.actor_id.hex(), ctx.was_current_actor_reconstructed

    def quit(self):
        from actorium.actor import exit_actor
        exit_actor()
        return "not reached"


def test_actor_context_names_the_actor_and_its_reconstruction(shared_cluster):
    r = Reporter.remote()
    actor_id, actor_hex, reconstructed = actorium.get(r.context.remote(), timeout=30)
    assert actor_id == actor_hex == r.actor_id.hex()
    assert reconstructed is False


def test_exit_actor_ends_the_actor_for_good(shared_cluster):
    r = Reporter.remote()
    assert actorium.get(r.context.remote(), timeout=30)
    with pytest.raises(ActorDiedError):
        actorium.get(r.quit.remote(), timeout=30)
    # max_restarts=1, yet an intentional exit is not restarted
    with pytest.raises(ActorDiedError):
        actorium.get(r.context.remote(), timeout=30)


@actorium.remote
def exit_outside_actor():
    from actorium.actor import exit_actor
    exit_actor()


def test_exit_actor_outside_an_actor_is_an_error(shared_cluster):
    with pytest.raises(TypeError, match="inside an actor"):
        actorium.get(exit_outside_actor.options(max_retries=0).remote(), timeout=30)


@actorium.remote(enable_task_events=False, _metadata={"lib": "x"}, label_selector={"zone": "a"})
def labelled():
    return "ran"


@actorium.remote(enable_task_events=False, label_selector={"zone": "a"})
class LabelledActor:
    def ping(self):
        return "pong"


def test_ray_options_that_change_nothing_here_are_accepted(shared_cluster):
    assert actorium.get(labelled.remote(), timeout=30) == "ran"
    assert actorium.get(labelled.options(enable_task_events=True).remote(), timeout=30) == "ran"
    a = LabelledActor.options(_metadata={"k": "v"}).remote()
    assert actorium.get(a.ping.options(enable_task_events=False).remote(), timeout=30) == "pong"


def test_ignored_option_is_noted_once(capfd):
    from actorium.core import options
    options._noted.discard("_metadata")
    for _ in range(3):
        actorium.remote(_metadata={"a": 1})(lambda: None)
    assert capfd.readouterr().err.count("_metadata= is accepted and not used") == 1


def test_accepted_option_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="label_selector"):
        actorium.remote(label_selector=["zone"])(lambda: None)
    with pytest.raises(TypeError, match="enable_task_events"):
        actorium.remote(enable_task_events="yes")(lambda: None)


def test_unknown_options_are_still_refused():
    with pytest.raises(ValueError, match="Invalid option"):
        actorium.remote(enable_task_event=True)(lambda: None)
    with pytest.raises(ValueError, match="Invalid option"):
        actorium.remote(label_selectors={})(type("A", (), {}))
