"""``.bind()`` on remote functions, actor classes and actor methods: a lazy DAG node.

The nodes are defined by ``actorium.dag``, a layer above the core, which registers its
builder here when it is imported. ``actorium/__init__.py`` imports it, and Python runs
that file before any ``actorium.*`` module, so ``.bind`` works in every process while
the core never imports the layer above it.
"""
from __future__ import annotations

from typing import Callable

_builder: Callable | None = None


def register(builder: Callable) -> None:
    """``builder(target, args, kwargs)`` makes the node for ``target.bind(*args, **kwargs)``."""
    global _builder
    _builder = builder


def bind(target, args: tuple, kwargs: dict):
    if _builder is None:
        raise RuntimeError("bind() needs actorium.dag, which registers itself when "
                           "imported: import actorium (or actorium.dag) first")
    return _builder(target, args, kwargs)
