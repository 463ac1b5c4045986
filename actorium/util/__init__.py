"""Utilities with the same import paths as ``ray.util``: ``ActorPool``, ``queue.Queue``
and ``scheduling_strategies``."""
from actorium.util import queue, scheduling_strategies
from actorium.util.actor_pool import ActorPool

__all__ = ["ActorPool", "queue", "scheduling_strategies"]
