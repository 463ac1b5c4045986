"""Ray's ``ray.remote_function`` module path: ``from actorium.remote_function import
RemoteFunction``."""
from actorium.core.remote_function import RemoteFunction

__all__ = ["RemoteFunction"]
