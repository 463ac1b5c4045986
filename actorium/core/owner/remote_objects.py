"""What a core worker does about other nodes: reading objects that live in another
node's store, and reacting when the gcs declares a node dead.

A stored value is ``[VALUE_STORED, object_id, size, location]`` where ``location`` is
the raylet address of the node that holds the primary copy. Reading it on another node
asks the local raylet to pull it (raylet to raylet, in chunks; ``raylet/object_pull.py``)
and then maps the local copy, so every process of a node shares one copy.

When a node dies:
* leases and lease requests on it are treated as dead workers (tasks are retried
  elsewhere while ``max_retries`` allows; ``core/owner/submitter.py``);
* owned objects whose primary copy was there are rebuilt from lineage (the producing
  task runs again) when the task was retryable; otherwise reading them raises
  ObjectLostError;
* objects this process waits for from an owner that no longer answers fail with
  OwnerDiedError.
"""
from __future__ import annotations

import threading
import time

from actorium.core.objects import serialization
from actorium.core.objects.serialization import VALUE_STORED
from actorium.core.owner import reconnect
from actorium.core.wire import protocol, transport
from actorium.exceptions import GetTimeoutError, ObjectLostError, OwnerDiedError

PULL_TIMEOUT = 120.0


def location(value) -> str:
    return value[3] if len(value) > 3 else ""


def read_stored(cw, object_id: bytes, value) -> memoryview:
    """The payload of a stored object, pulled into this node's store first if needed."""
    blob = cw.store.get(object_id)
    if blob is not None:
        return blob
    source = location(value)
    if source in cw.dead_raylets:
        raise ObjectLostError(f"object {object_id.hex()} was on a node that died")
    if source and source != cw.raylet_addr:
        try:
            cw.rpc_raylet(protocol.PullObject(transport.next_req_id(), object_id, source),
                          timeout=PULL_TIMEOUT)
        except (transport.RpcError, TimeoutError) as exc:
            raise ObjectLostError(f"object {object_id.hex()} could not be fetched from "
                                  f"{source}: {exc}") from None
        blob = cw.store.get(object_id)
    if blob is None:
        raise ObjectLostError(f"object {object_id.hex()} is no longer in the object store")
    return blob


def materialize_or_rebuild(cw, ref, value, timeout):
    """``get`` of one value: an owned stored value whose copy is lost is rebuilt from
    lineage (a few times at most) before ObjectLostError reaches the caller."""
    for attempt in range(4):
        try:
            return cw.materialize(ref.id, value)
        except ObjectLostError:
            if attempt == 3 or ref.id not in cw.lineage:
                raise
        started = threading.Event()
        cw.post(lambda v=value: (reconstruct_object(cw, ref.id, v), started.set()))
        started.wait(10)
        if not cw._wait_values([ref], 1, timeout):
            raise GetTimeoutError(f"Get timed out rebuilding lost object {ref.id.hex()}")
        value = cw.refs.get_value(ref.id)


def fetch_local(cw, items: list, deadline: float | None = None) -> set:
    """``wait(fetch_local=True)``: pull ready stored objects into this node's store; a
    value counts as ready only once it is here (Ray's rule). Returns the ids whose pull
    did not finish by ``deadline`` (monotonic; None: no limit but the pull's own). A copy
    that cannot be fetched at all counts as ready, left for ``get`` to report (as
    ObjectLostError, or rebuilt from lineage)."""
    late = set()
    for object_id, value in items:
        if value is None or value[0] != VALUE_STORED:
            continue
        source = location(value)
        if not source or source == cw.raylet_addr or source in cw.dead_raylets \
                or cw.store.contains(object_id):
            continue
        remaining = PULL_TIMEOUT if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            late.add(object_id)
            continue
        try:
            cw.rpc_raylet(protocol.PullObject(transport.next_req_id(), object_id, source),
                          timeout=min(remaining, PULL_TIMEOUT))
        except TimeoutError:
            if remaining < PULL_TIMEOUT:  # the caller's time ran out, not the pull's
                late.add(object_id)
        except transport.RpcError:
            pass
    return late


def on_node_update(cw, msg) -> None:
    """I/O thread: a NodeUpdate from the gcs."""
    if msg.alive:
        cw.dead_raylets.discard(msg.raylet_addr)
        return
    cw.dead_raylets.add(msg.raylet_addr)
    cw.owner_checks.clear()
    ours = msg.raylet_addr == cw.raylet_addr
    if ours:
        reconnect.reattach(cw)
    cw.submitter.on_node_dead(msg.raylet_addr, ours)
    reconstruct_from(cw, msg.raylet_addr)
    _fail_orphaned_borrows(cw)


def reconstruct_from(cw, raylet_addr: str) -> int:
    """Re-run the producing tasks of owned objects whose only copy was on a dead node."""
    return _reconstruct(cw, lambda oid, value: location(value) == raylet_addr)


def reconstruct_object(cw, object_id: bytes, lost_value) -> None:
    """I/O thread: ``get`` found this owned object lost; rebuild it unless that is
    already under way (its value is no longer the one that was found lost)."""
    _reconstruct(cw, lambda oid, value: oid == object_id and value is lost_value)


def _reconstruct(cw, lost) -> int:
    specs = {}
    with cw.refs.lock:
        for oid, spec in list(cw.lineage.items()):
            e = cw.refs.entries.get(oid)
            if e is None or e.value is None or e.value[0] != VALUE_STORED:
                continue
            if not lost(oid, e.value):
                continue
            e.value = None  # waiters registered from now on get the rebuilt value
            specs[spec.task_id] = spec
    for spec in specs.values():
        cw.lineage.update({oid: spec for oid in spec.return_ids})
        spec.failed = False
        spec.lease = None
        spec.lineage = False
        spec.retries_left -= 1 if spec.retries_left > 0 else 0
        cw.submitter.submit(spec, "run again to rebuild a lost result")
    return len(specs)


def _fail_orphaned_borrows(cw) -> None:
    """Objects we asked a remote owner for: if the owner no longer listens, it died
    with its node and nobody can ever answer."""
    waiting: dict[str, list] = {}
    with cw.refs.lock:
        for oid, e in cw.refs.entries.items():
            if not e.owned and e.requested and e.value is None:
                waiting.setdefault(e.owner, []).append(oid)
    for owner, oids in waiting.items():
        if not owner_alive(cw, owner):
            fail_owner_died(cw, owner, oids)


def owner_alive(cw, owner: str) -> bool:
    """Whether an owner still listens, checked once per owner after each node death."""
    alive = cw.owner_checks.get(owner)
    if alive is None:
        alive = cw.owner_checks[owner] = transport.peer_reachable(owner)
    return alive


def fail_owner_died(cw, owner: str, object_ids: list) -> None:
    err = OwnerDiedError(f"the owner of this object ({owner}) died with its node")
    blob = serialization.error_blob(err, "get", 0, user_error=False)
    for oid in object_ids:
        cw.refs.set_value(oid, [serialization.VALUE_ERROR, blob, 0])
