"""Utilities with the same import paths as ``ray.util`` (``scheduling_strategies``)."""
from actorium.util import scheduling_strategies

__all__ = ["scheduling_strategies"]
