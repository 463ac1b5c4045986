"""Ray's exception names work in ``except`` clauses both ways, and pickle intact."""
from __future__ import annotations

import pickle

import pytest

import actorium
from actorium import exceptions
from actorium.exceptions import (
    ActorDiedError, GetTimeoutError, RayActorError, RayError, RayTaskError, TaskError,
)

RAY_NAMES = [
    "RayError", "RayTaskError", "RayActorError", "ActorDiedError", "ActorUnavailableError",
    "RaySystemError", "TaskCancelledError", "WorkerCrashedError", "GetTimeoutError",
    "ObjectLostError", "OwnerDiedError", "ObjectFreedError", "ObjectFetchTimedOutError",
    "ObjectReconstructionFailedError", "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError", "ReferenceCountingAssertionError",
    "ObjectStoreFullError", "OutOfMemoryError", "OutOfDiskError", "NodeDiedError",
    "LocalRayletDiedError", "RuntimeEnvSetupError", "TaskUnschedulableError",
    "ActorUnschedulableError", "TaskPlacementGroupRemoved", "ActorPlacementGroupRemoved",
    "PendingCallsLimitExceeded", "AsyncioActorExit", "CrossLanguageError",
]


@pytest.mark.parametrize("name", RAY_NAMES)
def test_every_ray_exception_name_exists_and_pickles(name):
    cls = getattr(exceptions, name)
    assert issubclass(cls, RayError)
    if name in ("RayError", "RayTaskError", "ActorDiedError"):
        return  # constructed by the runtime with their own fields (see other tests)
    err = cls("what went wrong")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and str(again) == "what went wrong"


def test_ray_task_error_catches_a_remote_exception(shared_cluster):
    @actorium.remote
    def fail():
        raise ValueError("bad input")

    with pytest.raises(RayTaskError) as info:
        actorium.get(fail.remote(), timeout=30)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TaskError)


def test_ray_actor_error_catches_a_call_to_a_killed_actor(shared_cluster):
    @actorium.remote
    class A:
        def ping(self):
            return "pong"

    a = A.remote()
    assert actorium.get(a.ping.remote(), timeout=30) == "pong"
    actorium.kill(a)
    with pytest.raises(RayActorError) as info:
        actorium.get(a.ping.remote(), timeout=30)
    assert isinstance(info.value, ActorDiedError)


def test_ray_error_catches_a_get_timeout(shared_cluster):
    @actorium.remote
    def slow():
        import time
        time.sleep(5)

    ref = slow.remote()
    with pytest.raises(RayError):
        actorium.get(ref, timeout=0.05)
    with pytest.raises(GetTimeoutError):
        actorium.get(ref, timeout=0.05)
    actorium.cancel(ref)


def test_object_id_is_rays_alias_of_object_ref(shared_cluster):
    assert actorium.ObjectID is actorium.ObjectRef
    assert isinstance(actorium.put(1), actorium.ObjectID)
