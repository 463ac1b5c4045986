"""Ray's ``ray.runtime_context`` module path: ``get_runtime_context()`` and the
``RuntimeContext`` it returns."""
from actorium.core.api import RuntimeContext, get_runtime_context

__all__ = ["RuntimeContext", "get_runtime_context"]
