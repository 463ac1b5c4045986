"""A deployment's knobs, validated once when ``deploy()`` is called.

The config travels to the controller and to every router as a plain msgpack-able dict
(``to_dict``): it is control data, so it is never pickled. API keys are kept only as
SHA-256 digests, so the table the routers receive holds no usable secret.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PREFIX = re.compile(r"^/[A-Za-z0-9_.~/-]*$")
# resources={...} keys that map to actor options; any other key is a custom resource.
_RESOURCE_OPTIONS = {"CPU": "num_cpus", "num_cpus": "num_cpus", "GPU": "num_gpus",
                     "num_gpus": "num_gpus", "memory": "memory"}


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"deploy(): {name} must be an int >= {minimum}, got {value!r}")
    return value


def _number(name: str, value, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"deploy(): {name} must be a number >= {minimum}, got {value!r}")
    return float(value)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    name: str
    route_prefix: str | None = None
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 2.0
    max_ongoing_requests: int = 8
    idle_timeout_s: float = 60.0
    max_queued_requests: int = 1000
    resources: dict | None = None     # actor options for each replica, e.g. {"num_cpus": 1}
    auto_resources: bool = False      # resources="auto": replicas sized from measured use
    durable: bool = False
    api_key_digests: tuple = ()

    @classmethod
    def build(cls, name, *, route_prefix=None, min_replicas=1, max_replicas=1,
              target_ongoing_requests=2, max_ongoing_requests=None, idle_timeout_s=60,
              max_queued_requests=1000, resources=None, durable=False,
              api_keys=None) -> "DeploymentConfig":
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"deploy(): name must be 1-100 characters of letters, digits, "
                             f"'_', '.', '-' (starting with a letter or digit), got {name!r}")
        if route_prefix is not None:
            if not isinstance(route_prefix, str) or not _PREFIX.match(route_prefix) \
                    or "//" in route_prefix:
                raise ValueError(f"deploy(): route_prefix must be a URL path starting with "
                                 f"'/', e.g. '/chat', got {route_prefix!r}")
            route_prefix = route_prefix.rstrip("/") or "/"
        lo = _count("min_replicas", min_replicas, 0)
        hi = _count("max_replicas", max_replicas, 1)
        if lo > hi:
            raise ValueError(f"deploy(): min_replicas ({lo}) must not exceed "
                             f"max_replicas ({hi})")
        target = _number("target_ongoing_requests", target_ongoing_requests, 0)
        if target <= 0:
            raise ValueError("deploy(): target_ongoing_requests must be > 0")
        cap = max_ongoing_requests if max_ongoing_requests is not None \
            else max(8, int(target * 4))
        cap = _count("max_ongoing_requests", cap, 1)
        idle = _number("idle_timeout_s", idle_timeout_s, 0)
        queued = _count("max_queued_requests", max_queued_requests, 0)
        auto = resources == "auto"
        res = None if auto or resources is None else _resource_options(resources)
        if not isinstance(durable, bool):
            raise TypeError(f"deploy(): durable must be a bool, got {durable!r}")
        digests = _api_keys(api_keys)
        return cls(name, route_prefix, lo, hi, target, cap, idle, queued, res, auto,
                   durable, digests)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["api_key_digests"] = list(self.api_key_digests)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DeploymentConfig":
        d = dict(d)
        d["api_key_digests"] = tuple(d.get("api_key_digests") or ())
        return cls(**d)


def _resource_options(resources) -> dict:
    """``{"num_cpus": 1, "memory": 2**30, "browser": 1}`` -> actor options."""
    if not isinstance(resources, dict):
        raise TypeError(f"deploy(): resources must be None, 'auto' or a dict of resource "
                        f"name -> amount, got {resources!r}")
    out: dict = {}
    custom: dict = {}
    for k, v in resources.items():
        if not isinstance(k, str):
            raise TypeError(f"deploy(): resource names must be str, got {k!r}")
        _number(f"resources[{k!r}]", v, 0)
        if k in _RESOURCE_OPTIONS:
            out[_RESOURCE_OPTIONS[k]] = v
        else:
            custom[k] = v
    if custom:
        out["resources"] = custom
    return out


def _api_keys(api_keys) -> tuple:
    if api_keys is None:
        return ()
    if isinstance(api_keys, str) or not isinstance(api_keys, (list, tuple, set)):
        raise TypeError("deploy(): api_keys must be a list of strings")
    for k in api_keys:
        if not isinstance(k, str) or len(k) < 16:
            raise ValueError("deploy(): each API key must be a string of at least 16 "
                             "characters")
    return tuple(key_digest(k) for k in api_keys)
