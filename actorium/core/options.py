"""Typed options for remote functions and actors, validated when built.

``TaskOptions`` and ``ActorOptions`` are frozen; ``.options(...)`` makes a new one with
``dataclasses.replace`` semantics. Unknown names and wrong types fail at decoration or
call time with the list of valid options, as Ray users expect.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

from actorium.core import runtimes
from actorium.scheduling import rightsize

_NUMBER = (int, float)
_NONE = type(None)
# The types each option accepts, as Ray's option table declares them: a value of another
# type is a TypeError naming the option (Ray's wording); a bad value of the right type is
# a ValueError from the checks below.
_TYPES = {
    "num_cpus": (int, float, _NONE), "num_gpus": (int, float, _NONE),
    "memory": (int, float, _NONE), "resources": (dict, str, _NONE), "name": (str, _NONE),
    "max_retries": (int, _NONE), "retry_exceptions": (bool, list, tuple),
    "num_returns": (int, str, _NONE), "runtime_env": (dict, _NONE),
    "namespace": (str, _NONE), "lifetime": (str, _NONE), "get_if_exists": (bool,),
    "max_restarts": (int, _NONE), "max_task_retries": (int, _NONE),
    "max_concurrency": (int, _NONE), "isolation": (str, _NONE),
}


def _check_types(o) -> None:
    """Ray's TypeError for a wrongly typed option; None means the option's default."""
    for field in dataclasses.fields(o):
        value = getattr(o, field.name)
        types = _TYPES.get(field.name)
        if types is None:
            continue
        if not isinstance(value, types):
            raise TypeError(f"The type of keyword '{field.name}' must be "
                            f"{types if len(types) > 1 else types[0]}, but received type "
                            f"{type(value)}")
        if value is None and field.default is not None:
            object.__setattr__(o, field.name, field.default)


def _check_resource_amount(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def _check_common(o) -> None:
    """Checks shared by task and actor options: types, resource amounts, isolation."""
    _check_types(o)
    _check_resource_amount("num_cpus", o.num_cpus)
    _check_resource_amount("num_gpus", o.num_gpus)
    _check_resource_amount("memory", o.memory)
    _check_resources(o.resources, auto_ok=isinstance(o, ActorOptions))
    if o.resources == AUTO and (o.num_cpus or o.memory):
        raise ValueError("resources='auto' sizes CPU and memory by measured use; do not "
                         "also give num_cpus or memory")
    if o.isolation not in (None, "none") and o.isolation not in runtimes.isolation_names():
        valid = " or ".join(["None", *map(repr, runtimes.isolation_names())])
        raise ValueError(f"isolation must be {valid}, got {o.isolation!r}")


AUTO = "auto"


def _check_resources(value, auto_ok: bool = False) -> None:
    if value is None:
        return
    if value == AUTO and auto_ok:
        return
    if isinstance(value, str):
        if auto_ok:
            raise ValueError(f"resources must be a dict of name -> amount or 'auto', "
                             f"got {value!r}")
        raise ValueError(f"resources must be a dict of name -> amount, got {value!r}; "
                         f"resources='auto' (right-sizing by measured use) is for actors only")
    if not isinstance(value, dict):
        raise TypeError(f"resources must be a dict of name -> amount, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(f"resource names must be str, got {k!r}")
        if k in ("CPU", "GPU"):
            raise ValueError(f"use num_cpus/num_gpus instead of resources={{{k!r}: ...}}")
        _check_resource_amount(f"resources[{k!r}]", v)


@dataclass(frozen=True, slots=True)
class TaskOptions:
    num_cpus: float = 1
    num_gpus: float = 0
    resources: dict | None = None
    memory: int = 0
    max_retries: int = 3
    retry_exceptions: Any = False
    num_returns: Any = None  # None: 1, or "streaming" for a generator function (Ray's default)
    name: str = ""
    scheduling_strategy: Any = None
    runtime_env: dict | None = None
    isolation: str | None = None
    sandbox: Any = None

    def __post_init__(self):
        _check_common(self)
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) \
                or self.max_retries < -1:
            raise ValueError(f"max_retries must be an int >= -1, got {self.max_retries!r}")
        re = self.retry_exceptions
        if not isinstance(re, bool) and not (
                isinstance(re, (list, tuple)) and all(isinstance(c, type) and issubclass(c, BaseException) for c in re)):
            raise TypeError("retry_exceptions must be a bool or a list of exception classes")
        nr = self.num_returns
        if nr not in (None, "streaming", "dynamic") and (
                isinstance(nr, bool) or not isinstance(nr, int) or nr < 0):
            raise ValueError(f"num_returns must be an int >= 0, 'streaming' or 'dynamic', "
                             f"got {nr!r}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    def shape(self) -> dict:
        return resource_shape(self.num_cpus, self.num_gpus, self.resources, self.memory)


@dataclass(frozen=True, slots=True)
class ActorOptions:
    num_cpus: float = 0
    num_gpus: float = 0
    resources: dict | None = None
    memory: int = 0
    name: str | None = None
    namespace: str | None = None
    lifetime: str | None = None
    get_if_exists: bool = False
    max_restarts: int = 0
    max_task_retries: int | None = None  # None: 0, or -1 (re-deliver) for durable actors
    max_concurrency: int | None = None
    scheduling_strategy: Any = None
    runtime_env: dict | None = None
    isolation: str | None = None
    sandbox: Any = None
    checkpoint: Any = None

    def __post_init__(self):
        _check_common(self)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        if self.namespace is not None and not isinstance(self.namespace, str):
            raise TypeError("namespace must be a str")
        if self.lifetime not in (None, "detached", "non_detached"):
            raise ValueError(f"lifetime must be None, 'detached' or 'non_detached', got {self.lifetime!r}")
        for attr in ("max_restarts", "max_task_retries"):
            v = getattr(self, attr)
            if v is None and attr == "max_task_retries":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < -1:
                raise ValueError(f"{attr} must be an int >= -1, got {v!r}")
        mc = self.max_concurrency
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 1):
            raise ValueError(f"max_concurrency must be an int >= 1, got {mc!r}")
        if self.checkpoint is not None and not runtimes.actor_runtimes():
            raise ValueError("checkpoint= needs the durable actor runtime (actorium.durable)")
        for runtime in runtimes.actor_runtimes():
            runtime.check_options(self)

    @property
    def auto(self) -> bool:
        return self.resources == AUTO

    def shape(self) -> dict:
        if self.auto:  # placed and started with a small reservation, then measured
            return {**rightsize.initial_shape(), **resource_shape(0, self.num_gpus, None, 0)}
        return resource_shape(self.num_cpus, self.num_gpus, self.resources, self.memory)

    def task_retries(self, durable: bool) -> int:
        """Actors of a runtime that survives crashes (durable) re-deliver calls cut off by
        one unless told otherwise."""
        if self.max_task_retries is not None:
            return self.max_task_retries
        return -1 if durable else 0


def resource_shape(num_cpus, num_gpus, resources, memory) -> dict:
    shape = {}
    if num_cpus:
        shape["CPU"] = float(num_cpus)
    if num_gpus:
        shape["GPU"] = float(num_gpus)
    if memory:
        shape["memory"] = float(memory)
    for k, v in (resources or {}).items():
        if v:
            shape[k] = float(v)
    return shape


def _valid_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# Options Ray accepts that change nothing here, with why; each is noted once per process.
_ACCEPTED_NOT_USED = {
    "enable_task_events": (bool, "actorium records no task events, so there are none "
                                 "to switch on or off"),
    "_metadata": (dict, "it is metadata for Ray's own libraries, which actorium does "
                        "not have"),
    "label_selector": (dict, "actorium nodes carry no labels; the work may run on any "
                             "node that has its resources"),
}
_noted: set = set()


def _drop_accepted(kwargs: dict) -> dict:
    """Check and remove the options of _ACCEPTED_NOT_USED, noting each once."""
    for name in set(kwargs) & set(_ACCEPTED_NOT_USED):
        kind, why = _ACCEPTED_NOT_USED[name]
        value = kwargs.pop(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        if name == "label_selector" and value and not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise TypeError("label_selector must map label names (str) to values (str)")
        if name not in _noted and not (name == "enable_task_events" and value is False):
            _noted.add(name)
            print(f"actorium: note: option {name}= is accepted and not used: {why}.",
                  file=sys.stderr)
    return kwargs


def build(cls, base=None, **kwargs):
    """Make ``cls`` options from keyword arguments, layered over ``base`` if given."""
    valid = _valid_names(cls)
    if not kwargs.keys().isdisjoint(_ACCEPTED_NOT_USED):
        kwargs = _drop_accepted(kwargs)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"Invalid option(s) {', '.join(map(repr, unknown))} for "
            f"{'an actor' if cls is ActorOptions else 'a remote function'}. "
            f"Valid options: {', '.join(valid)}")
    if base is None:
        return cls(**kwargs)
    return dataclasses.replace(base, **kwargs)
