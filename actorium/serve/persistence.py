"""What lets deployments outlive their controller process (a head restart, a crash).

The controller keeps each deployment's spec — config, class, constructor arguments —
in the gcs key-value table, which the gcs persists in LMDB and reloads on a head
restart. The controller and ingress are detached actors with unlimited restarts; a
restarted controller reads the specs back, adopts the replicas still running (they
are named ``replica:<deployment>:<rid>``, durable sessions ``<deployment>/<key>``),
stops replicas of deployments that no longer exist, and restarts the ingress on the
address it had.

Specs hold the user's class and arguments, so they are serialized as user values
(cloudpickle, as every actor argument is) — stored and read only by cluster processes.
"""
from __future__ import annotations

import cloudpickle

from actorium.serve import _runtime as rt

INDEX_KEY = b"actorium-serve:deployments"
SPEC_PREFIX = b"actorium-serve:spec:"
INGRESS_KEY = b"actorium-serve:ingress"
REPLICA_PREFIX = "replica:"


def replica_name(deployment: str, rid: str) -> str:
    return f"{REPLICA_PREFIX}{deployment}:{rid}"


def save(dep, names) -> None:
    blob = cloudpickle.dumps({"config": dep.config.to_dict(), "actor_cls": dep.actor_cls,
                              "init_args": dep.init_args, "init_kwargs": dep.init_kwargs,
                              "methods": dep.methods, "class_name": dep.class_name,
                              "signatures": dep.signatures})
    rt.kv_put(SPEC_PREFIX + dep.name.encode(), blob, raw=True)
    rt.kv_put(INDEX_KEY, sorted(names))


def forget(name: str, names) -> None:
    rt.kv_put(INDEX_KEY, sorted(names))
    rt.kv_put(SPEC_PREFIX + name.encode(), b"", raw=True)


def load() -> list[dict]:
    """The saved specs (an unreadable one is skipped: its deployment is lost)."""
    specs = []
    for name in rt.kv_get(INDEX_KEY) or []:
        blob = rt.kv_get(SPEC_PREFIX + name.encode(), raw=True)
        if not blob:
            continue
        try:
            specs.append(cloudpickle.loads(blob))
        except Exception:
            continue
    return specs


def running_replicas(namespace: str) -> tuple[dict, dict]:
    """Live replicas by deployment: ({dep: [(rid, handle)]}, {dep: [(key, handle)]} for
    durable sessions)."""
    pool: dict = {}
    sessions: dict = {}
    for info in rt.list_actors():
        if info.get("state") == "DEAD" or not info.get("name"):
            continue
        name, ns = info["name"], info.get("namespace")
        if ns == namespace and name.startswith(REPLICA_PREFIX):
            dep, _, rid = name[len(REPLICA_PREFIX):].rpartition(":")
            pool.setdefault(dep, []).append((rid, rt.handle_for(info)))
        elif ns == rt.SESSION_NAMESPACE and "/" in name:
            dep, _, key = name.partition("/")
            sessions.setdefault(dep, []).append((key, rt.handle_for(info)))
    return pool, sessions


def save_ingress(host: str, port: int) -> None:
    rt.kv_put(INGRESS_KEY, {"host": host, "port": port})


def load_ingress() -> dict | None:
    return rt.kv_get(INGRESS_KEY)
