"""Argument checks at ``.remote()``: a missing or extra argument is the caller's
TypeError at the call site, as in Ray, not a failed task later.

A method's parameters travel with its actor's handle (through the gcs, to other
processes), so they are kept in a small msgpack-able form: ``[name, kind, has_default]``.
The common call, as many positional arguments as plain parameters, skips the bind.
"""
from __future__ import annotations

import functools
import inspect

_EMPTY = inspect.Parameter.empty


def encode(fn, drop_first: bool = False) -> list | None:
    """``fn``'s parameters as ``[[name, kind, has_default], ...]``; None if unknown."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if drop_first and params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                                    params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    return [[p.name, int(p.kind), p.default is not _EMPTY] for p in params]


def plain_arity(encoded) -> int:
    """The number of parameters when all are positional-or-keyword without defaults
    (then exactly that many positional arguments bind), else -1."""
    if encoded is None:
        return -1
    plain = int(inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if all(kind == plain and not default for _, kind, default in encoded):
        return len(encoded)
    return -1


@functools.lru_cache(maxsize=1024)
def _signature(frozen: tuple) -> inspect.Signature:
    return inspect.Signature([
        inspect.Parameter(name, inspect._ParameterKind(kind),
                          default=None if default else _EMPTY)
        for name, kind, default in frozen])


def check(what: str, encoded, args: tuple, kwargs: dict) -> None:
    """Raise TypeError naming ``what`` if ``args``/``kwargs`` do not fit ``encoded``."""
    try:
        _signature(tuple(map(tuple, encoded))).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what}.remote(): {exc}") from None
