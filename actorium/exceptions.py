"""The exceptions actorium raises, one tree under ``ActoriumError``.

Every exception here pickles and unpickles intact, because errors cross processes:
a remote failure is stored as a value and raised again wherever it is read.
"""
from __future__ import annotations


class ActoriumError(Exception):
    """Base of every error raised by actorium itself."""


class TaskError(ActoriumError):
    """A remote task or actor method raised.

    Raised in the caller as an instance of *both* ``TaskError`` and the original
    exception's class, so ``except ValueError`` catches a remote ``ValueError``.
    ``cause`` is the original exception (or None if it could not be transported),
    ``remote_traceback`` the formatted traceback from the remote process.
    """

    def __init__(self, function_name: str = "", remote_traceback: str = "", cause=None,
                 pid: int = 0, cause_class: str = ""):
        self.function_name = function_name
        self.remote_traceback = remote_traceback
        self.cause = cause
        self.pid = pid
        self.cause_class = cause_class or (type(cause).__name__ if cause is not None else "")
        super().__init__(self._message())

    def _message(self) -> str:
        return (f"{self.cause_class} in {self.function_name} (pid={self.pid}):\n"
                f"{self.remote_traceback.rstrip()}")

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self):
        return (TaskError, (self.function_name, self.remote_traceback, self.cause, self.pid,
                            self.cause_class))

    def as_instanceof_cause(self) -> "TaskError":
        """Return an equivalent error that is also an instance of the cause's class."""
        cause_cls = type(self.cause) if self.cause is not None else None
        if cause_cls is None or issubclass(TaskError, cause_cls) or isinstance(self, cause_cls):
            return self
        derived = _derived_classes.get(cause_cls)
        if derived is None:
            try:
                derived = type(f"TaskError({cause_cls.__name__})", (TaskError, cause_cls), {
                    "__init__": _derived_init,
                    "__str__": TaskError.__str__,
                    "__reduce__": TaskError.__reduce__,
                    "__module__": "actorium.exceptions",
                })
            except TypeError:  # layout conflict (e.g. C-level exception types)
                return self
            _derived_classes[cause_cls] = derived
        try:
            err = derived.__new__(derived)
        except TypeError:  # a builtin whose __new__ refuses subclasses (MemoryError)
            return self
        err.__dict__.update(self.__dict__)
        err.args = (self._message(),)
        return err


def _derived_init(self, *args, **kwargs):
    """Instances of derived classes are built by as_instanceof_cause, not by callers."""


_derived_classes: dict[type, type] = {}


class WorkerCrashedError(ActoriumError):
    """The worker running a task died (exit, signal, segfault) and retries ran out."""


class RayActorError(ActoriumError):
    """The actor cannot run the call (Ray's name; parent of ActorDiedError and
    ActorUnavailableError)."""


class ActorDiedError(RayActorError):
    """The actor is dead: killed, crashed without restarts left, or its constructor raised."""

    def __init__(self, message: str = "The actor died.", actor_id: str = ""):
        self.actor_id = actor_id
        super().__init__(message)

    def __reduce__(self):
        return (ActorDiedError, (self.args[0] if self.args else "", self.actor_id))


class GetTimeoutError(ActoriumError, TimeoutError):
    """``get`` or ``wait``-style blocking call did not finish within its timeout."""


class TaskCancelledError(ActoriumError):
    """The task was cancelled with ``actorium.cancel``."""


class ObjectLostError(ActoriumError):
    """The object's value is gone (its node or owner died) and cannot be rebuilt."""


class OwnerDiedError(ObjectLostError):
    """The process that owns the object exited, so its value is no longer reachable."""


class ObjectStoreFullError(ActoriumError):
    """The object store is full and spilling to disk was refused."""


class NodeDiedError(ActoriumError):
    """The node running the work died."""


class TaskUnschedulableError(ActoriumError):
    """The task's scheduling strategy can never be met (e.g. hard node affinity to a
    node that is dead)."""


class ActorUnschedulableError(ActoriumError):
    """The actor's scheduling strategy can never be met."""


class SandboxViolation(ActoriumError):
    """Sandboxed code hit a limit or a denied operation; the message names which."""


class AuthenticationError(ActoriumError):
    """No cluster token was found for this process, or the cluster refused it."""


class AmbiguousStep(ActoriumError):
    """A journaled, non-idempotent step began before a crash but its outcome was never
    committed: its side effect may or may not have happened. The agent should look at
    the outside world (e.g. ask the service about ``idempotency_key``) and decide.
    Raised again at the same point every time the request is re-run."""

    def __init__(self, message: str = "", step: str = "", seq: int = 0,
                 idempotency_key: str = "", attempts: int = 0):
        self.step = step
        self.seq = seq
        self.idempotency_key = idempotency_key
        self.attempts = attempts
        super().__init__(message or f"step {step!r} (#{seq}) is ambiguous")

    def __reduce__(self):
        return (AmbiguousStep, (self.args[0] if self.args else "", self.step, self.seq,
                                self.idempotency_key, self.attempts))


class JournalError(ActoriumError):
    """The durable store could not record a step, checkpoint or event (full,
    unwritable, unreachable), or a re-run request no longer matches its journal."""


class CheckpointError(ActoriumError):
    """An actor's state could not be checkpointed or restored."""


class BackPressureError(ActoriumError):
    """A deployment's request queue is full (``max_queued_requests`` waiting for a
    replica): the request was refused without running. HTTP callers get 429."""


class DeploymentError(ActoriumError):
    """A deployment could not be created, found or reached (unknown name, replicas
    that fail to start, a controller that does not answer)."""


# -- Ray's names ---------------------------------------------------------------------
# Ray code catches these; each is our class under Ray's name, or a class of ours placed
# where Ray places it in its tree, so ``except`` works both ways.
RayError = ActoriumError
RayTaskError = TaskError


class ActorUnavailableError(RayActorError):
    """The actor is alive but cannot be reached right now (e.g. it is restarting)."""


class RaySystemError(ActoriumError):
    """The runtime itself failed (not the user's code)."""


class OutOfMemoryError(ActoriumError):
    """The task or actor was killed because the node ran out of memory."""


class OutOfDiskError(ActoriumError):
    """The node's disk is full, so an object could not be spilled."""


class ObjectFreedError(ObjectLostError):
    """The object was freed explicitly, so its value is gone."""


class ObjectFetchTimedOutError(ObjectLostError):
    """Fetching the object from another node timed out."""


class ObjectReconstructionFailedError(ObjectLostError):
    """The object was lost and rebuilding it from lineage failed."""


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectReconstructionFailedError):
    """The object was lost and its task has no retries left to rebuild it."""


class ObjectReconstructionFailedLineageEvictedError(ObjectReconstructionFailedError):
    """The object was lost and its lineage is no longer kept."""


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """An object was read after reference counting had already freed it."""


class LocalRayletDiedError(ActoriumError):
    """This process's node daemon (raylet) died."""


class RuntimeEnvSetupError(ActoriumError):
    """The task's ``runtime_env`` could not be set up."""


class TaskPlacementGroupRemoved(ActoriumError):
    """The placement group the task was scheduled into was removed."""


class ActorPlacementGroupRemoved(ActoriumError):
    """The placement group the actor was scheduled into was removed."""


class PendingCallsLimitExceeded(ActoriumError):
    """Too many calls are waiting for this actor (``max_pending_calls``)."""


class AsyncioActorExit(ActoriumError):
    """Raised to make an async actor exit (``exit_actor`` inside an async actor)."""


class CrossLanguageError(ActoriumError):
    """A failure in another language's worker (kept for Ray's name; actorium is Python)."""


class ActorClassInheritanceException(TypeError):
    """A class tried to inherit from an ``@actorium.remote`` actor class."""


__all__ = [
    "ActoriumError", "TaskError", "WorkerCrashedError", "ActorDiedError",
    "GetTimeoutError", "TaskCancelledError", "ObjectLostError",
    "OwnerDiedError", "ObjectStoreFullError", "NodeDiedError", "SandboxViolation",
    "TaskUnschedulableError", "ActorUnschedulableError",
    "AuthenticationError", "AmbiguousStep", "JournalError", "CheckpointError",
    "BackPressureError", "DeploymentError",
    # Ray's names
    "RayError", "RayTaskError", "RayActorError", "ActorUnavailableError", "RaySystemError",
    "OutOfMemoryError", "OutOfDiskError", "ObjectFreedError", "ObjectFetchTimedOutError",
    "ObjectReconstructionFailedError", "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError", "ReferenceCountingAssertionError",
    "LocalRayletDiedError", "RuntimeEnvSetupError", "TaskPlacementGroupRemoved",
    "ActorPlacementGroupRemoved", "PendingCallsLimitExceeded", "AsyncioActorExit",
    "CrossLanguageError", "ActorClassInheritanceException",
]
