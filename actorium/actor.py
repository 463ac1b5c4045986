"""Ray's ``ray.actor`` module path: ``from actorium.actor import ActorHandle, exit_actor``."""
from actorium.core.actor import ActorClass, ActorHandle, ActorMethod, exit_actor, method

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor", "method"]
