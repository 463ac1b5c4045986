"""Append-only event logs, one per key (a session's key), kept in the gcs's durable store
and readable from any driver or worker of the cluster.

Inside a request, ``emit`` is idempotent per position: the n-th emit of a request that
is re-run after a crash finds its earlier append and adds nothing, so a log never holds
a request's event twice and never loses one that ``emit`` returned for.
"""
from __future__ import annotations

from actorium.core.objects import serialization
from actorium.core.wire import protocol, transport
from actorium.durable import context


def _check_key(key) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"an event log key must be a non-empty str, got {key!r}")
    return key


def emit(key: str, event) -> int:
    """Append ``event`` (any serializable value without ObjectRefs) to log ``key``; returns
    its index. Durable (fsync'd) when this returns."""
    _check_key(key)
    ser = serialization.serialize(event)
    if ser.contained:
        raise TypeError("durable.emit(): events must not contain ObjectRefs (they do not "
                        "outlive their owner); emit the values instead")
    dedup = b""
    try:
        call = context.current_call("durable.emit()")
    except RuntimeError:
        call = None  # a driver: no request to deduplicate under
    if call is not None:
        dedup = b"e" + call.scope + b"|" + call.request + call.emits.to_bytes(4, "big")
        call.emits += 1
        earlier = call.take_events()  # queued session events go first: the log's order
        while earlier:
            log_key, earlier_dedup, blob = earlier[0]
            try:
                context.rpc(protocol.EventAppend(transport.next_req_id(), log_key, blob,
                                                 earlier_dedup), f"an event of log {log_key!r}")
            except BaseException:
                call.pending_events[:0] = earlier  # not written: keep them queued
                raise
            earlier.pop(0)
    return context.rpc(protocol.EventAppend(transport.next_req_id(), key, ser.to_bytes(),
                                            dedup), f"an event of log {key!r}",
                       retry=bool(dedup))  # a repeat without a dedup key would append twice


def events(key: str, start: int = 0, end: int | None = None) -> list:
    """The events of log ``key`` with ``start <= index < end`` (end None: to the last)."""
    _check_key(key)
    for name, v in (("start", start), ("end", end)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"durable.events(): {name} must be an int >= 0, got {v!r}")
    blobs = context.rpc(protocol.EventRange(transport.next_req_id(), key, start,
                                            -1 if end is None else end),
                        f"a read of log {key!r}")
    return [serialization.deserialize(b) for b in blobs]
